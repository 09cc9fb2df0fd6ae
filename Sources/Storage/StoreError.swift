/// Why a store operation failed: a code, a one-line message naming the object, and the cause (an `Errno` for a
/// failed file call, so that a caller can still tell a full disk or a permission problem apart).
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// The kind of failure. A struct rather than an enum so that codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case invalidKey, alreadyExists, locked, symbolicLink, notAnObject, io, noSpace, unsupported
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// A key that is not a valid ``ObjectKey``.
        public static let invalidKey = Code(.invalidKey)
        /// A new object (or a staged group) was to be made where one exists already.
        public static let alreadyExists = Code(.alreadyExists)
        /// Another owner holds the lock.
        public static let locked = Code(.locked)
        /// The folder store found a symbolic link where an object or a prefix is: it never follows one.
        public static let symbolicLink = Code(.symbolicLink)
        /// Something that is not an object is where one was asked for (a folder, a FIFO, a device), or an object is
        /// where a prefix must be.
        public static let notAnObject = Code(.notAnObject)
        /// A call on the store failed; the cause says which.
        public static let io = Code(.io)
        /// The store is full (or a quota is used up).
        public static let noSpace = Code(.noSpace)
        /// The store cannot do what was asked (an atomic exchange where the file system has none).
        public static let unsupported = Code(.unsupported)

        public var description: String {
            switch kind {
            case .invalidKey: "invalid key"
            case .alreadyExists: "already exists"
            case .locked: "locked"
            case .symbolicLink: "symbolic link"
            case .notAnObject: "not an object"
            case .io: "I/O"
            case .noSpace: "no space"
            case .unsupported: "unsupported"
            }
        }
    }

    /// The kind of failure.
    public var code: Code
    /// One line: what failed, on which object.
    public var message: String
    /// The error that caused this one, if any: an `Errno` for a failed file call.
    public var cause: (any Error & Sendable)?
    /// For ``Code/locked``: the owner the holder of the lock gave, when the store could read it.
    public var lockOwner: String?

    /// A failure of `code`, described by `message`, caused by `cause`.
    public init(_ code: Code, _ message: String, cause: (any Error & Sendable)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause
    }

    public var description: String { message }

    /// `text` in double quotes with control characters escaped, for a one-line message.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars.prefix(80) {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20 || (0x7f...0x9f).contains(scalar.value):
                out += "\\u{" + String(scalar.value, radix: 16) + "}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
