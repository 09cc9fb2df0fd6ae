/// An error reported by libvirt, with libvirt's own message and error number.
///
/// libvirt keeps its last error per thread; a ``LibvirtError`` is built on the thread that made the failing
/// call, right after it, so the message always belongs to that call.
public struct LibvirtError: Error, Sendable, CustomStringConvertible {
    /// What kind of failure this is. A struct rather than an enum so that codes can be added.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Kind: Hashable, Sendable {
            case connect, noDomain, noCheckpoint, inconsistentCheckpoint, noBackupJob, operationInvalid, operationFailed
            case operationUnsupported, invalidArgument, xml, closed, other
        }
        private let kind: Kind
        private init(_ kind: Kind) { self.kind = kind }

        /// Opening the connection failed, or the connection to libvirt was lost.
        public static let connect = Code(.connect)
        /// No domain matches the name or UUID (`VIR_ERR_NO_DOMAIN`).
        public static let noDomain = Code(.noDomain)
        /// No checkpoint matches the name (`VIR_ERR_NO_DOMAIN_CHECKPOINT`).
        public static let noCheckpoint = Code(.noCheckpoint)
        /// The checkpoint exists but cannot be used as an incremental base: a disk's bitmap for it is missing
        /// or broken, after QEMU was killed say (`VIR_ERR_CHECKPOINT_INCONSISTENT`).
        public static let inconsistentCheckpoint = Code(.inconsistentCheckpoint)
        /// The domain has no backup job (`VIR_ERR_NO_DOMAIN_BACKUP`).
        public static let noBackupJob = Code(.noBackupJob)
        /// The operation does not apply in the domain's current state, e.g. starting a running domain
        /// (`VIR_ERR_OPERATION_INVALID`).
        public static let operationInvalid = Code(.operationInvalid)
        /// The hypervisor failed to carry out the operation (`VIR_ERR_OPERATION_FAILED`,
        /// `VIR_ERR_INTERNAL_ERROR`, `VIR_ERR_SYSTEM_ERROR`).
        public static let operationFailed = Code(.operationFailed)
        /// The driver does not support the operation (`VIR_ERR_NO_SUPPORT`, `VIR_ERR_OPERATION_UNSUPPORTED`,
        /// `VIR_ERR_CONFIG_UNSUPPORTED`).
        public static let operationUnsupported = Code(.operationUnsupported)
        /// An argument libvirt rejected (`VIR_ERR_INVALID_ARG`).
        public static let invalidArgument = Code(.invalidArgument)
        /// An XML document libvirt could not parse or accept (`VIR_ERR_XML_ERROR`, `VIR_ERR_XML_DETAIL`).
        public static let xml = Code(.xml)
        /// The connection was closed by ``LibvirtConnection/close()``; no more calls can be made on it.
        public static let closed = Code(.closed)
        /// Any other libvirt error; ``LibvirtError/libvirtCode`` tells which.
        public static let other = Code(.other)

        public var description: String {
            switch kind {
            case .connect: "connect"
            case .noDomain: "no domain"
            case .noCheckpoint: "no checkpoint"
            case .inconsistentCheckpoint: "inconsistent checkpoint"
            case .noBackupJob: "no backup job"
            case .operationInvalid: "operation invalid"
            case .operationFailed: "operation failed"
            case .operationUnsupported: "operation unsupported"
            case .invalidArgument: "invalid argument"
            case .xml: "xml"
            case .closed: "closed"
            case .other: "other"
            }
        }
    }

    /// What kind of failure this is.
    public var code: Code
    /// A readable message: libvirt's own when it gave one, after what was being done.
    public var message: String
    /// libvirt's error number (`virErrorNumber`), or 0 when the error did not come from libvirt.
    public var libvirtCode: Int32

    /// Creates an error; `libvirtCode` is 0 for errors that did not come from libvirt.
    public init(_ code: Code, _ message: String, libvirtCode: Int32 = 0) {
        self.code = code
        self.message = message
        self.libvirtCode = libvirtCode
    }

    public var description: String { message }
}
