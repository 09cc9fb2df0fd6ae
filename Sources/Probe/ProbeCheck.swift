/// A check's verdict, as the check gives it.
enum Verdict: Sendable {
    /// The server did as the rule says; the note, when given, says what was seen.
    case pass(String? = nil)
    /// The server broke the rule: which rule, and what the server did.
    case fail(String)
    /// The check does not apply to this server or this run: why.
    case skip(String)
}

/// One named rule of the protocol, and how to test a server for it.
struct ProbeCheck: Sendable {
    /// `group.check`, e.g. `handshake.unknown-option`.
    var name: String
    /// Runs the check. A ``ProbeError`` it throws is a failure of the check, with the error's message.
    var run: @Sendable (ProbeContext) async throws(ProbeError) -> Verdict

    init(_ name: String, _ run: @escaping @Sendable (ProbeContext) async throws(ProbeError) -> Verdict) {
        self.name = name
        self.run = run
    }
}
