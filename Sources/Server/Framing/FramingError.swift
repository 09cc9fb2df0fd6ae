import NBDProtocol

/// Bytes that cannot be an NBD message: the connection ends, since nothing after them can be framed.
struct FramingError: Error, Equatable {
    /// What was wrong.
    enum Code: Equatable {
        /// An option header without the `IHAVEOPT` magic.
        case wrongOptionMagic
        /// An option whose data is longer than ``NBDWire/maximumOption``.
        case optionTooLong
        /// A request header without the request magic.
        case wrongRequestMagic
        /// A write whose payload is longer than ``NBDWire/maximumRequest``.
        case writeTooLong
    }

    let code: Code
    /// The number that broke the rule: the magic or the length read.
    let value: UInt64

    init(_ code: Code, _ value: UInt64) {
        self.code = code
        self.value = value
    }
}
