internal import CLibvirt

#if canImport(Glibc)
    import Glibc
#endif

// MARK: - Raw calls
// Every libvirt call of the module goes through this file, so that C types stay here and every failure is
// turned into a LibvirtError on the thread that made the call, before anything else can overwrite libvirt's
// per-thread last error.

/// A `virConnectPtr`. libvirt's objects are thread-safe; the module still makes every call on a connection
/// from that connection's worker thread, so that errors are read on the thread that failed.
struct ConnectionPointer: @unchecked Sendable {  // libvirt connections are thread-safe reference-counted objects
    let raw: OpaquePointer
}

/// A `virDomainPtr`, reference-counted by libvirt and freed by ``Domain``'s deinit.
struct DomainPointer: @unchecked Sendable {  // libvirt domains are thread-safe reference-counted objects
    let raw: OpaquePointer
}

enum Virt {
    /// libvirt's last error on this thread, as a LibvirtError; `code` overrides the code derived from the
    /// libvirt error number (opening a connection fails with `.connect` whatever the reason).
    ///
    /// `context` is evaluated only after the error is read: every public libvirt call, even
    /// `virDomainGetName` used in a message, resets the thread's last error on entry.
    static func lastError(_ context: @autoclosure () -> String, code: LibvirtError.Code? = nil) -> LibvirtError {
        guard let error = virGetLastError() else {
            return LibvirtError(code ?? .other, "\(context()): unknown libvirt error")
        }
        let number = error.pointee.code
        let message = error.pointee.message.map { String(cString: $0) } ?? "unknown libvirt error"
        return LibvirtError(
            code ?? self.code(forError: number), "\(context()): \(message)", libvirtCode: number)
    }

    /// The code for libvirt's error number (`virErrorNumber`): the one place that maps libvirt's numbers.
    static func code(forError number: Int32) -> LibvirtError.Code {
        switch virErrorNumber(UInt32(bitPattern: number)) {
        case VIR_ERR_NO_CONNECT, VIR_ERR_RPC: .connect
        case VIR_ERR_NO_DOMAIN: .noDomain
        case VIR_ERR_NO_DOMAIN_CHECKPOINT: .noCheckpoint
        case VIR_ERR_CHECKPOINT_INCONSISTENT: .inconsistentCheckpoint
        case VIR_ERR_NO_DOMAIN_BACKUP: .noBackupJob
        case VIR_ERR_OPERATION_INVALID: .operationInvalid
        case VIR_ERR_INTERNAL_ERROR, VIR_ERR_OPERATION_FAILED, VIR_ERR_SYSTEM_ERROR: .operationFailed
        case VIR_ERR_NO_SUPPORT, VIR_ERR_CONFIG_UNSUPPORTED, VIR_ERR_OPERATION_UNSUPPORTED: .operationUnsupported
        case VIR_ERR_INVALID_ARG: .invalidArgument
        case VIR_ERR_XML_ERROR, VIR_ERR_XML_DETAIL: .xml
        default: .other
        }
    }

    /// Takes ownership of a string libvirt allocated with malloc.
    private static func take(_ string: UnsafeMutablePointer<CChar>) -> String {
        defer { free(string) }
        return String(cString: string)
    }

    // MARK: Library and event loop

    /// Initializes libvirt and registers its default event loop; call once per process, before any
    /// connection is opened.
    static func initializeWithDefaultEventLoop() -> LibvirtError? {
        // In-process drivers (qemu:///embed) log warnings and their version banner to stderr, which would
        // break the one-line errors of a command-line tool. Errors still reach callers as LibvirtError;
        // whoever wants libvirt's log sets LIBVIRT_LOG_OUTPUTS, which is then left as it is.
        setenv("LIBVIRT_LOG_OUTPUTS", "4:file:/dev/null", 0)
        if virInitialize() != 0 { return lastError("cannot initialize libvirt") }
        // libvirt prints every error to stderr unless told otherwise; errors reach callers as LibvirtError.
        virSetErrorFunc(nil) { _, _ in }
        if virEventRegisterDefaultImpl() != 0 { return lastError("cannot register libvirt's event loop") }
        return nil
    }

    /// Runs one iteration of the default event loop; blocks until something happens.
    static func runEventLoopOnce() -> LibvirtError? {
        virEventRunDefaultImpl() == 0 ? nil : lastError("libvirt's event loop failed")
    }

    // MARK: Connections

    static func open(uri: String) throws(LibvirtError) -> ConnectionPointer {
        guard let conn = virConnectOpen(uri) else { throw lastError("cannot connect to \(uri)", code: .connect) }
        return ConnectionPointer(raw: conn)
    }

    static func close(_ conn: ConnectionPointer) {
        _ = virConnectClose(conn.raw)
    }

    /// Whether the connection still reaches its driver (false once the daemon went away, also after it came
    /// back: a connection is never re-established by libvirt).
    static func isAlive(_ conn: ConnectionPointer) -> Bool {
        virConnectIsAlive(conn.raw) == 1
    }

    static func uri(_ conn: ConnectionPointer) throws(LibvirtError) -> String {
        guard let uri = virConnectGetURI(conn.raw) else { throw lastError("cannot read the connection URI") }
        return take(uri)
    }

    static func capabilities(_ conn: ConnectionPointer) throws(LibvirtError) -> String {
        guard let xml = virConnectGetCapabilities(conn.raw) else {
            throw lastError("cannot read the host's capabilities")
        }
        return take(xml)
    }

    // MARK: Domains

    static func lookupDomain(_ conn: ConnectionPointer, name: String) throws(LibvirtError) -> DomainPointer {
        guard let dom = virDomainLookupByName(conn.raw, name) else {
            throw lastError("cannot find domain \(name)")
        }
        return DomainPointer(raw: dom)
    }

    static func lookupDomain(_ conn: ConnectionPointer, uuid: String) throws(LibvirtError) -> DomainPointer {
        guard let dom = virDomainLookupByUUIDString(conn.raw, uuid) else {
            throw lastError("cannot find domain \(uuid)")
        }
        return DomainPointer(raw: dom)
    }

    static func defineDomain(_ conn: ConnectionPointer, xml: String) throws(LibvirtError) -> DomainPointer {
        guard let dom = virDomainDefineXML(conn.raw, xml) else { throw lastError("cannot define the domain") }
        return DomainPointer(raw: dom)
    }

    static func listDomainNames(_ conn: ConnectionPointer) throws(LibvirtError) -> [String] {
        var list: UnsafeMutablePointer<OpaquePointer?>? = nil
        let count = virConnectListAllDomains(conn.raw, &list, 0)
        guard count >= 0, let list else { throw lastError("cannot list domains") }
        defer { free(list) }
        var names: [String] = []
        for index in 0..<Int(count) {
            guard let dom = list[index] else { continue }
            if let name = virDomainGetName(dom) { names.append(String(cString: name)) }
            virDomainFree(dom)
        }
        return names
    }

    static func freeDomain(_ dom: DomainPointer) {
        _ = virDomainFree(dom.raw)
    }

    static func name(_ dom: DomainPointer) -> String {
        virDomainGetName(dom.raw).map { String(cString: $0) } ?? ""
    }

    static func uuidString(_ dom: DomainPointer) throws(LibvirtError) -> String {
        var buffer = [CChar](repeating: 0, count: Int(VIR_UUID_STRING_BUFLEN))
        if virDomainGetUUIDString(dom.raw, &buffer) != 0 { throw lastError("cannot read the domain's UUID") }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func create(_ dom: DomainPointer, paused: Bool) throws(LibvirtError) {
        let flags = paused ? VIR_DOMAIN_START_PAUSED.rawValue : 0
        if virDomainCreateWithFlags(dom.raw, flags) != 0 { throw lastError("cannot start domain \(name(dom))") }
    }

    static func destroy(_ dom: DomainPointer) throws(LibvirtError) {
        if virDomainDestroy(dom.raw) != 0 { throw lastError("cannot destroy domain \(name(dom))") }
    }

    static func undefine(_ dom: DomainPointer, checkpointMetadata: Bool, keepNVRAM: Bool, removeTPMState: Bool)
        throws(LibvirtError)
    {
        var flags: UInt32 = 0
        if checkpointMetadata { flags |= VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA.rawValue }
        if keepNVRAM { flags |= VIR_DOMAIN_UNDEFINE_KEEP_NVRAM.rawValue }
        if removeTPMState { flags |= VIR_DOMAIN_UNDEFINE_TPM.rawValue }
        if virDomainUndefineFlags(dom.raw, flags) != 0 { throw lastError("cannot undefine domain \(name(dom))") }
    }

    /// The domain's state as libvirt's `virDomainState` number.
    static func state(_ dom: DomainPointer) throws(LibvirtError) -> Int32 {
        var state: Int32 = 0
        var reason: Int32 = 0
        if virDomainGetState(dom.raw, &state, &reason, 0) != 0 {
            throw lastError("cannot read the state of domain \(name(dom))")
        }
        return state
    }

    static func xmlDescription(_ dom: DomainPointer, inactive: Bool) throws(LibvirtError) -> String {
        let flags = inactive ? VIR_DOMAIN_XML_INACTIVE.rawValue : 0
        guard let xml = virDomainGetXMLDesc(dom.raw, flags) else {
            throw lastError("cannot read the XML of domain \(name(dom))")
        }
        return take(xml)
    }

    // MARK: Checkpoints

    /// Creates (or with `redefine`, re-creates from saved XML) a checkpoint and returns its name.
    static func createCheckpoint(_ dom: DomainPointer, xml: String, redefine: Bool) throws(LibvirtError) -> String {
        let flags = redefine ? VIR_DOMAIN_CHECKPOINT_CREATE_REDEFINE.rawValue : 0
        guard let checkpoint = virDomainCheckpointCreateXML(dom.raw, xml, flags) else {
            throw lastError("cannot create a checkpoint of domain \(name(dom))")
        }
        defer { virDomainCheckpointFree(checkpoint) }
        return virDomainCheckpointGetName(checkpoint).map { String(cString: $0) } ?? ""
    }

    /// The names of the domain's checkpoints, parents before their children.
    static func checkpointNames(_ dom: DomainPointer) throws(LibvirtError) -> [String] {
        var list: UnsafeMutablePointer<OpaquePointer?>? = nil
        let count = virDomainListAllCheckpoints(dom.raw, &list, VIR_DOMAIN_CHECKPOINT_LIST_TOPOLOGICAL.rawValue)
        guard count >= 0 else { throw lastError("cannot list the checkpoints of domain \(name(dom))") }
        guard let list else { return [] }
        defer { free(list) }
        var names: [String] = []
        for index in 0..<Int(count) {
            guard let checkpoint = list[index] else { continue }
            if let name = virDomainCheckpointGetName(checkpoint) { names.append(String(cString: name)) }
            virDomainCheckpointFree(checkpoint)
        }
        return names
    }

    /// Looks a checkpoint up, runs `body` on it and frees it.
    private static func withCheckpoint<T>(
        _ dom: DomainPointer, named checkpointName: String,
        _ body: (OpaquePointer) throws(LibvirtError) -> T
    ) throws(LibvirtError) -> T {
        guard let checkpoint = virDomainCheckpointLookupByName(dom.raw, checkpointName, 0) else {
            throw lastError("cannot find checkpoint \(checkpointName) of domain \(name(dom))")
        }
        defer { virDomainCheckpointFree(checkpoint) }
        return try body(checkpoint)
    }

    static func checkpointExists(_ dom: DomainPointer, named checkpointName: String) throws(LibvirtError) {
        try withCheckpoint(dom, named: checkpointName) { _ in }
    }

    static func checkpointXML(_ dom: DomainPointer, named checkpointName: String) throws(LibvirtError) -> String {
        try withCheckpoint(dom, named: checkpointName) { checkpoint throws(LibvirtError) in
            guard let xml = virDomainCheckpointGetXMLDesc(checkpoint, 0) else {
                throw lastError("cannot read the XML of checkpoint \(checkpointName)")
            }
            return take(xml)
        }
    }

    static func deleteCheckpoint(
        _ dom: DomainPointer, named checkpointName: String, metadataOnly: Bool
    ) throws(LibvirtError) {
        try withCheckpoint(dom, named: checkpointName) { checkpoint throws(LibvirtError) in
            let flags = metadataOnly ? VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY.rawValue : 0
            if virDomainCheckpointDelete(checkpoint, flags) != 0 {
                throw lastError("cannot delete checkpoint \(checkpointName)")
            }
        }
    }

    // MARK: Backup jobs

    static func beginBackup(_ dom: DomainPointer, backupXML: String, checkpointXML: String?) throws(LibvirtError) {
        if virDomainBackupBegin(dom.raw, backupXML, checkpointXML, 0) != 0 {
            throw lastError("cannot begin a backup of domain \(name(dom))")
        }
    }

    static func backupXML(_ dom: DomainPointer) throws(LibvirtError) -> String {
        guard let xml = virDomainBackupGetXMLDesc(dom.raw, 0) else {
            throw lastError("cannot read the backup job of domain \(name(dom))")
        }
        return take(xml)
    }

    static func abortJob(_ dom: DomainPointer) throws(LibvirtError) {
        if virDomainAbortJob(dom.raw) != 0 { throw lastError("cannot abort the job of domain \(name(dom))") }
    }

    /// The active job: libvirt's `virDomainJobType` number, the `operation` field (a
    /// `virDomainJobOperation`) when present, and the backup's scratch usage when reported.
    static func jobStats(_ dom: DomainPointer) throws(LibvirtError) -> (
        type: Int32, operation: Int32?, tempUsed: UInt64?, tempTotal: UInt64?
    ) {
        var type: Int32 = 0
        var params: virTypedParameterPtr? = nil
        var count: Int32 = 0
        if virDomainGetJobStats(dom.raw, &type, &params, &count, 0) != 0 {
            throw lastError("cannot read the job of domain \(name(dom))")
        }
        defer { virTypedParamsFree(params, count) }
        var operation: Int32 = 0
        let hasOperation = virTypedParamsGetInt(params, count, VIR_DOMAIN_JOB_OPERATION, &operation) == 1
        var used: UInt64 = 0
        let hasUsed = virTypedParamsGetULLong(params, count, VIR_DOMAIN_JOB_DISK_TEMP_USED, &used) == 1
        var total: UInt64 = 0
        let hasTotal = virTypedParamsGetULLong(params, count, VIR_DOMAIN_JOB_DISK_TEMP_TOTAL, &total) == 1
        return (type, hasOperation ? operation : nil, hasUsed ? used : nil, hasTotal ? total : nil)
    }

    // MARK: Block jobs

    /// Starts mirroring disk `disk` into the existing image `destinationXML` describes (a `<disk>` element), every
    /// block of its chain (with `shallow`, of its top image only), at most `bytesPerSecond` (0: unlimited). The job is
    /// transient: a persistent domain may run it, and it does not outlive the domain.
    static func blockCopy(
        _ dom: DomainPointer, disk: String, destinationXML: String, shallow: Bool, bytesPerSecond: UInt64
    ) throws(LibvirtError) {
        var params: virTypedParameterPtr? = nil
        var count: Int32 = 0
        var capacity: Int32 = 0
        defer { virTypedParamsFree(params, count) }
        if bytesPerSecond > 0,
            virTypedParamsAddULLong(&params, &count, &capacity, VIR_DOMAIN_BLOCK_COPY_BANDWIDTH, bytesPerSecond) != 0
        {
            throw lastError("cannot set the rate of the copy of disk \(disk)")
        }
        let flags = UInt32(
            VIR_DOMAIN_BLOCK_COPY_REUSE_EXT.rawValue | VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB.rawValue
                | (shallow ? VIR_DOMAIN_BLOCK_COPY_SHALLOW.rawValue : 0))
        if virDomainBlockCopy(dom.raw, disk, destinationXML, params, count, flags) != 0 {
            throw lastError("cannot start copying disk \(disk) of domain \(name(dom)) into its image")
        }
    }

    /// Ends the block copy of `disk` by switching the domain onto the copy; false when the copy has not caught up
    /// yet (`VIR_ERR_BLOCK_COPY_ACTIVE`), and nothing changed.
    static func pivotBlockCopy(_ dom: DomainPointer, disk: String) throws(LibvirtError) -> Bool {
        let flags = UInt32(VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT.rawValue)
        if virDomainBlockJobAbort(dom.raw, disk, flags) == 0 { return true }
        let error = lastError("cannot switch disk \(disk) of domain \(name(dom)) onto its copy")
        if error.libvirtCode == Int32(VIR_ERR_BLOCK_COPY_ACTIVE.rawValue) { return false }
        throw error
    }

    /// The disk's block job: its `virDomainBlockJobType`, position and end; nil when it has none.
    static func blockJob(_ dom: DomainPointer, disk: String) throws(LibvirtError) -> (
        type: Int32, current: UInt64, end: UInt64
    )? {
        var info = virDomainBlockJobInfo()
        let flags = UInt32(VIR_DOMAIN_BLOCK_JOB_INFO_BANDWIDTH_BYTES.rawValue)
        switch virDomainGetBlockJobInfo(dom.raw, disk, &info, flags) {
        case 0: return nil
        case 1: return (info.type, info.cur, info.end)
        default: throw lastError("cannot read the block job of disk \(disk) of domain \(name(dom))")
        }
    }

    // MARK: QEMU monitor

    static func qemuMonitorCommand(_ dom: DomainPointer, hmp command: String) throws(LibvirtError) -> String {
        var result: UnsafeMutablePointer<CChar>? = nil
        let flags = VIR_DOMAIN_QEMU_MONITOR_COMMAND_HMP.rawValue
        guard virDomainQemuMonitorCommand(dom.raw, command, &result, flags) == 0 else {
            throw lastError("monitor command failed on domain \(name(dom))")
        }
        return result.map(take) ?? ""
    }
}
