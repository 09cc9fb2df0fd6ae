import Foundation

/// libvirt's default event loop, registered once per process and run on a thread of its own.
///
/// libvirt needs a running event loop for keepalives, domain events and, with the embedded QEMU driver
/// (`qemu:///embed?root=DIR`), for the QEMU monitor itself. It must be registered before the first
/// connection is opened; the thread runs until the process exits.
enum EventLoop {
    /// Registers the loop and starts its thread the first time it is read; the error, if registering failed.
    private static let started: LibvirtError? = {
        if let error = Virt.initializeWithDefaultEventLoop() { return error }
        let thread = Thread {
            while true {
                if Virt.runEventLoopOnce() != nil {
                    Thread.sleep(forTimeInterval: 0.01)  // a failed iteration must not spin a core
                }
            }
        }
        thread.name = "libvirt-event-loop"
        thread.start()
        return nil
    }()

    /// Makes sure the loop runs; throws the error from registering it if that failed.
    static func ensureRunning() throws(LibvirtError) {
        if let error = started { throw error }
    }
}
