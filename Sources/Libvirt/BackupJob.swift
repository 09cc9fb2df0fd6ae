/// What libvirt reports about a domain's current job.
public struct DomainJobInfo: Hashable, Sendable {
    /// Whether a job is active, and how it ended when it is not cleaned up yet.
    public enum Kind: Hashable, Sendable {
        /// No job is active.
        case none
        /// A job with a finite completion time is active.
        case bounded
        /// A job without a finite completion time is active; a pull-mode backup is one.
        case unbounded
        /// The job finished and is not cleaned up yet.
        case completed
        /// The job failed and is not cleaned up yet.
        case failed
        /// The job was aborted and is not cleaned up yet.
        case cancelled
        /// A kind this version of the bindings does not know, with libvirt's number.
        case other(Int32)

        init(libvirtType: Int32) {
            switch libvirtType {
            case 0: self = .none
            case 1: self = .bounded
            case 2: self = .unbounded
            case 3: self = .completed
            case 4: self = .failed
            case 5: self = .cancelled
            default: self = .other(libvirtType)
            }
        }
    }

    /// The operation that started a job (`virDomainJobOperation`).
    public struct Operation: RawRepresentable, Hashable, Sendable {
        public var rawValue: Int32
        public init(rawValue: Int32) { self.rawValue = rawValue }
        /// A domain start.
        public static let start = Operation(rawValue: 1)
        /// Saving the domain's state.
        public static let save = Operation(rawValue: 2)
        /// An outgoing migration.
        public static let migrationOut = Operation(rawValue: 5)
        /// A snapshot.
        public static let snapshot = Operation(rawValue: 6)
        /// A memory or core dump.
        public static let dump = Operation(rawValue: 8)
        /// A backup job (`virDomainBackupBegin`).
        public static let backup = Operation(rawValue: 9)
    }

    /// Whether a job is active, and how it ended.
    public var kind: Kind
    /// The operation that started the job, when libvirt says.
    public var operation: Operation?
    /// Bytes of scratch space a backup job uses now, when reported.
    public var temporaryDiskUsed: UInt64?
    /// Bytes of scratch space a backup job may use at most, when reported.
    public var temporaryDiskTotal: UInt64?

    /// Whether a job is running now (bounded or unbounded).
    public var isActive: Bool { kind == .bounded || kind == .unbounded }
    /// Whether a backup job is running now.
    public var isBackupActive: Bool { isActive && operation == .backup }
}

extension Domain {
    /// Starts a backup job. For a pull-mode backup, QEMU exports each chosen disk over NBD (export name =
    /// disk target) until ``abortJob()`` ends the job.
    ///
    /// `backupXML` is a `<domainbackup>` document (`<incremental>` names the checkpoint to start from);
    /// `checkpointXML`, when given, is a `<domaincheckpoint>` created at the moment the backup starts.
    /// The corresponding C function is `virDomainBackupBegin`.
    public func beginBackup(backupXML: String, checkpointXML: String? = nil) async throws(LibvirtError) {
        try await perform { (dom) throws(LibvirtError) in
            try Virt.beginBackup(dom, backupXML: backupXML, checkpointXML: checkpointXML)
        }
    }

    /// The running backup job's XML as libvirt completed it (export names, scratch files, the NBD server).
    /// Throws ``LibvirtError/Code/noBackupJob`` when no backup runs.
    /// The corresponding C function is `virDomainBackupGetXMLDesc`.
    public func backupXML() async throws(LibvirtError) -> String {
        try await perform { (dom) throws(LibvirtError) in try Virt.backupXML(dom) }
    }

    /// Ends the domain's current job and waits until libvirt reports no active job; for a pull-mode backup
    /// this is the normal end, which stops the NBD exports and removes the scratch files libvirt created.
    ///
    /// libvirt returns from the abort before QEMU has finished cancelling the backup's block jobs, so this
    /// polls ``jobInfo()`` every 10 ms until the job is gone, and throws ``LibvirtError/Code/operationFailed``
    /// if it is still active after `timeout`. The corresponding C function is `virDomainAbortJob`.
    public func abortJob(timeout: Duration = .seconds(30)) async throws(LibvirtError) {
        try await perform { (dom) throws(LibvirtError) in try Virt.abortJob(dom) }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while try await jobInfo().isActive {
            if clock.now >= deadline {
                throw LibvirtError(
                    .operationFailed, "the job of domain \(name) is still active \(timeout) after aborting it")
            }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// The domain's current job. The corresponding C function is `virDomainGetJobStats`.
    public func jobInfo() async throws(LibvirtError) -> DomainJobInfo {
        let stats = try await perform { (dom) throws(LibvirtError) in try Virt.jobStats(dom) }
        return DomainJobInfo(
            kind: DomainJobInfo.Kind(libvirtType: stats.type),
            operation: stats.operation.map(DomainJobInfo.Operation.init(rawValue:)),
            temporaryDiskUsed: stats.tempUsed,
            temporaryDiskTotal: stats.tempTotal
        )
    }
}
