/// A libvirt domain (a virtual machine) of a ``LibvirtConnection``.
///
/// Every method runs its libvirt call on the connection's worker thread. The object stays valid while the
/// domain is redefined, started or stopped; after ``undefine(removingCheckpointMetadata:)`` of a shut-off
/// domain, calls fail with ``LibvirtError/Code/noDomain``.
public final class Domain: Sendable {
    /// The connection the domain belongs to.
    public let connection: LibvirtConnection
    /// The domain's name.
    public let name: String

    let pointer: DomainPointer

    init(connection: LibvirtConnection, pointer: DomainPointer) {
        self.connection = connection
        self.pointer = pointer
        self.name = Virt.name(pointer)
    }

    deinit {
        Virt.freeDomain(pointer)
    }

    /// Runs a blocking libvirt call on the domain on the connection's worker thread.
    func perform<T: Sendable>(
        _ body: @escaping @Sendable (DomainPointer) throws(LibvirtError) -> T
    ) async throws(LibvirtError) -> T {
        let pointer = self.pointer
        return try await connection.perform { (_) throws(LibvirtError) in try body(pointer) }
    }

    /// The same domain, looked up by UUID (so never another domain of the same name) through a new connection
    /// to the same URI: for when this one's connection was lost (libvirtd restarted) and the domain, with its
    /// job, outlived it. The UUID is read locally, which works on a lost connection.
    public func reopened() async throws(LibvirtError) -> Domain {
        let uuid = try await uuid()
        return try await LibvirtConnection.open(uri: connection.uri).domain(uuid: uuid)
    }

    // MARK: Life cycle

    /// The domain's UUID in its usual text form. The corresponding C function is `virDomainGetUUIDString`.
    public func uuid() async throws(LibvirtError) -> String {
        try await perform { (dom) throws(LibvirtError) in try Virt.uuidString(dom) }
    }

    /// Starts the defined domain, with its vCPUs paused when `paused` is true.
    /// The corresponding C function is `virDomainCreateWithFlags`.
    public func start(paused: Bool = false) async throws(LibvirtError) {
        try await perform { (dom) throws(LibvirtError) in try Virt.create(dom, paused: paused) }
    }

    /// Stops the running domain at once, like pulling its power plug. The corresponding C function is
    /// `virDomainDestroy`.
    public func destroy() async throws(LibvirtError) {
        try await perform { (dom) throws(LibvirtError) in try Virt.destroy(dom) }
    }

    /// Removes the domain's persistent definition; a running domain becomes transient and goes away when it
    /// stops. With `removingCheckpointMetadata`, libvirt also drops its checkpoint metadata (the bitmaps in
    /// the images stay), without which libvirt refuses to undefine a domain that has checkpoints. With
    /// `keepingNVRAM`, a UEFI domain's NVRAM file stays (libvirt refuses to undefine one whose file exists unless
    /// told to keep or remove it); with `removingTPMState`, its emulated TPM's state goes with it.
    /// The corresponding C function is `virDomainUndefineFlags`.
    public func undefine(
        removingCheckpointMetadata: Bool = true, keepingNVRAM: Bool = false, removingTPMState: Bool = false
    ) async throws(LibvirtError) {
        try await perform { (dom) throws(LibvirtError) in
            try Virt.undefine(
                dom, checkpointMetadata: removingCheckpointMetadata, keepNVRAM: keepingNVRAM,
                removeTPMState: removingTPMState)
        }
    }

    /// The domain's current state. The corresponding C function is `virDomainGetState`.
    public func state() async throws(LibvirtError) -> DomainState {
        DomainState(libvirtState: try await perform { (dom) throws(LibvirtError) in try Virt.state(dom) })
    }

    /// The domain's XML: the live definition when it runs, or with `inactive` the persistent one that the
    /// next start uses. The corresponding C function is `virDomainGetXMLDesc`.
    public func xmlDescription(inactive: Bool = false) async throws(LibvirtError) -> String {
        try await perform { (dom) throws(LibvirtError) in try Virt.xmlDescription(dom, inactive: inactive) }
    }

    /// The domain's disks (and cdroms, floppies, LUNs) in the order of its live XML.
    public func disks() async throws(LibvirtError) -> [DomainDisk] {
        try DomainDisk.parse(domainXML: try await xmlDescription())
    }

    // MARK: Block jobs

    /// Starts copying the running domain's disk `disk` (its target, `vda`) into the existing qcow2 or raw image at
    /// `path`, of the disk's size: every block of its backing chain, or with `shallow` only what its top image holds
    /// (the image at `path` must then already read as the rest of the chain does). Guest writes are mirrored into it
    /// until ``pivotBlockCopy(disk:)``. At most `bytesPerSecond` (0: as fast as it goes). Follow it with
    /// ``blockJob(disk:)``. The corresponding C function is `virDomainBlockCopy` (reusing the image, a transient job).
    public func startBlockCopy(
        disk: String, into path: String, format: String, shallow: Bool = false, bytesPerSecond: UInt64 = 0
    ) async throws(LibvirtError) {
        let xml = DomainDisk.imageXML(path: path, format: format)
        try await perform { (dom) throws(LibvirtError) in
            try Virt.blockCopy(
                dom, disk: disk, destinationXML: xml, shallow: shallow, bytesPerSecond: bytesPerSecond)
        }
    }

    /// Switches disk `disk` onto its block copy once the copy has caught up, ending the job; false when it has not
    /// caught up yet. The corresponding C function is `virDomainBlockJobAbort` with
    /// `VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT`.
    public func pivotBlockCopy(disk: String) async throws(LibvirtError) -> Bool {
        try await perform { (dom) throws(LibvirtError) in try Virt.pivotBlockCopy(dom, disk: disk) }
    }

    /// The block job running on disk `disk`, or nil when none runs (a pull that finished is gone).
    /// The corresponding C function is `virDomainGetBlockJobInfo`.
    public func blockJob(disk: String) async throws(LibvirtError) -> BlockJobProgress? {
        try await perform { (dom) throws(LibvirtError) in
            try Virt.blockJob(dom, disk: disk).map {
                BlockJobProgress(isCopy: $0.type == 2, done: $0.current, total: $0.end)
            }
        }
    }

    // MARK: QEMU monitor

    /// Sends a human monitor (HMP) command to the domain's QEMU and returns its output.
    ///
    /// QEMU reports most HMP failures in the output rather than as an error, so callers check the text.
    /// Meant for tests and diagnosis: libvirt marks domains touched this way as tainted.
    /// The corresponding C function is `virDomainQemuMonitorCommand` with `VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP`.
    public func qemuMonitorCommand(_ hmp: String) async throws(LibvirtError) -> String {
        try await perform { (dom) throws(LibvirtError) in try Virt.qemuMonitorCommand(dom, hmp: hmp) }
    }
}

/// How far a disk's block job is.
public struct BlockJobProgress: Sendable, Equatable {
    /// Whether it is a block copy (rather than a pull, a commit or a backup).
    public var isCopy: Bool
    /// The bytes done so far.
    public var done: UInt64
    /// The bytes the job has to do in all (it may grow while the guest writes).
    public var total: UInt64

    /// A job of the kind `isCopy` says, `done` of `total` bytes.
    public init(isCopy: Bool, done: UInt64, total: UInt64) {
        self.isCopy = isCopy
        self.done = done
        self.total = total
    }
}

/// The state of a domain, as libvirt reports it.
public enum DomainState: Hashable, Sendable, CustomStringConvertible {
    /// libvirt does not know the state.
    case noState
    /// The domain is running.
    case running
    /// The domain is blocked on a resource.
    case blocked
    /// The domain's vCPUs are paused.
    case paused
    /// The domain is being shut down.
    case shuttingDown
    /// The domain is not running.
    case shutOff
    /// The domain crashed.
    case crashed
    /// The guest suspended itself through power management.
    case suspended
    /// A state this version of the bindings does not know, with libvirt's number.
    case other(Int32)

    init(libvirtState: Int32) {
        switch libvirtState {
        case 0: self = .noState
        case 1: self = .running
        case 2: self = .blocked
        case 3: self = .paused
        case 4: self = .shuttingDown
        case 5: self = .shutOff
        case 6: self = .crashed
        case 7: self = .suspended
        default: self = .other(libvirtState)
        }
    }

    public var description: String {
        switch self {
        case .noState: "no state"
        case .running: "running"
        case .blocked: "blocked"
        case .paused: "paused"
        case .shuttingDown: "shutting down"
        case .shutOff: "shut off"
        case .crashed: "crashed"
        case .suspended: "suspended"
        case .other(let number): "state \(number)"
        }
    }
}
