import Testing

/// The reader's suites, one after another: they run qemu-img a lot, and the large-image suite measures
/// memory, which other suites running beside it would disturb.
@Suite(.serialized, .timeLimit(.minutes(10)))
struct QCOW2ReaderTests {}
