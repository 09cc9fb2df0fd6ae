import Foundation
import Synchronization

/// A connection to a libvirt hypervisor driver.
///
/// Every blocking libvirt call on the connection runs on the connection's own worker thread, one at a time;
/// the async methods suspend the calling task until the call is done and never block Swift's cooperative pool.
/// libvirt's default event loop is registered and run on its own thread the first time a connection is opened.
///
/// The URI `qemu:///embed?root=DIR` runs the QEMU driver inside this process: it reads `DIR/etc/qemu.conf`,
/// and only one process may use a root at a time. Keep `DIR` short: unix socket paths under it are limited
/// to 108 bytes.
public final class LibvirtConnection: Sendable {
    /// The URI used when none is given: the environment variable `LIBVIRT_DEFAULT_URI`, else `qemu:///system`.
    public static var defaultURI: String {
        if let uri = ProcessInfo.processInfo.environment["LIBVIRT_DEFAULT_URI"], !uri.isEmpty { return uri }
        return "qemu:///system"
    }

    /// The URI the connection was opened with.
    public let uri: String

    private let pointer: ConnectionPointer
    private let worker: WorkerThread
    private let closed = Mutex(false)

    private init(uri: String, pointer: ConnectionPointer, worker: WorkerThread) {
        self.uri = uri
        self.pointer = pointer
        self.worker = worker
    }

    /// Opens a connection to `uri`, or to ``defaultURI`` when it is nil.
    ///
    /// Throws a ``LibvirtError`` with code ``LibvirtError/Code/connect`` and libvirt's message when the
    /// connection cannot be opened. The corresponding C function is `virConnectOpen`.
    public static func open(uri: String? = nil) async throws(LibvirtError) -> LibvirtConnection {
        try EventLoop.ensureRunning()
        let uri = uri ?? defaultURI
        let worker = WorkerThread(name: "libvirt-connection")
        let closedError = LibvirtError(.closed, "the libvirt connection is closed")
        do {
            let pointer = try await worker.run(closedError: closedError) { () throws(LibvirtError) in
                try Virt.open(uri: uri)
            }
            return LibvirtConnection(uri: uri, pointer: pointer, worker: worker)
        } catch {
            worker.stop(after: {})
            throw error
        }
    }

    /// Closes the connection once the calls already queued have finished. Later calls throw
    /// ``LibvirtError/Code/closed``; ``Domain`` objects of this connection stop working too.
    /// The corresponding C function is `virConnectClose`.
    public func close() async {
        let first = closed.withLock { closed in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        let pointer = self.pointer
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            worker.stop {
                Virt.close(pointer)
                continuation.resume()
            }
        }
    }

    deinit {
        let pointer = self.pointer
        if !closed.withLock({ $0 }) { worker.stop { Virt.close(pointer) } }
    }

    /// Runs a blocking libvirt call on the connection's worker thread.
    func perform<T: Sendable>(
        _ body: @escaping @Sendable (ConnectionPointer) throws(LibvirtError) -> T
    ) async throws(LibvirtError) -> T {
        let pointer = self.pointer
        if closed.withLock({ $0 }) { throw LibvirtError(.closed, "the libvirt connection is closed") }
        return try await worker.run(closedError: LibvirtError(.closed, "the libvirt connection is closed")) {
            () throws(LibvirtError) in try body(pointer)
        }
    }

    /// Whether the connection still reaches its driver. It does not once libvirtd has stopped or restarted (a
    /// remote connection is never re-established); open a new one then. The C function is `virConnectIsAlive`.
    public func isAlive() async -> Bool {
        (try? await perform { (conn) throws(LibvirtError) in Virt.isAlive(conn) }) ?? false
    }

    // MARK: Domains

    /// The domain with this name, running or only defined.
    ///
    /// Throws ``LibvirtError/Code/noDomain`` with libvirt's message when there is none.
    /// The corresponding C function is `virDomainLookupByName`.
    public func domain(named name: String) async throws(LibvirtError) -> Domain {
        let pointer = try await perform { (conn) throws(LibvirtError) in try Virt.lookupDomain(conn, name: name) }
        return Domain(connection: self, pointer: pointer)
    }

    /// The domain with this UUID; throws ``LibvirtError/Code/noDomain`` when there is none.
    /// The corresponding C function is `virDomainLookupByUUIDString`.
    public func domain(uuid: String) async throws(LibvirtError) -> Domain {
        let pointer = try await perform { (conn) throws(LibvirtError) in try Virt.lookupDomain(conn, uuid: uuid) }
        return Domain(connection: self, pointer: pointer)
    }

    /// Defines a persistent domain from its XML (or replaces the definition of the domain with that name
    /// and UUID) without starting it. The corresponding C function is `virDomainDefineXML`.
    public func define(xml: String) async throws(LibvirtError) -> Domain {
        let pointer = try await perform { (conn) throws(LibvirtError) in try Virt.defineDomain(conn, xml: xml) }
        return Domain(connection: self, pointer: pointer)
    }

    /// The hypervisor's capabilities XML: among others, each guest architecture's emulator binary.
    /// The corresponding C function is `virConnectGetCapabilities`.
    public func capabilities() async throws(LibvirtError) -> String {
        try await perform { (conn) throws(LibvirtError) in try Virt.capabilities(conn) }
    }

    /// The names of every domain of the connection, running or only defined.
    /// The corresponding C function is `virConnectListAllDomains`.
    public func domainNames() async throws(LibvirtError) -> [String] {
        try await perform { (conn) throws(LibvirtError) in try Virt.listDomainNames(conn) }
    }
}
