/// ChildProcess, CommandResult, HarnessError and the waiting helpers come from the shared test-support target; exported
/// here so that every file of this target sees them without an import of its own.
@_exported import TestSupport
