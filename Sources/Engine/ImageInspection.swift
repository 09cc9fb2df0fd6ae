import FileIO
import QCOW2

/// Reading image metadata off Swift's cooperative threads.
public enum ImageInspection {
    /// The report of `path` and its backing chain, read on the I/O thread pool. Devices are read only with
    /// `allowDevices`; FIFOs and sockets never (see ``ImageReport/init(path:allowDevices:)``).
    public static func report(path: String, allowDevices: Bool = false) async throws(QCOW2Error) -> ImageReport {
        try await BlockingWork.run { () throws(QCOW2Error) in try ImageReport(path: path, allowDevices: allowDevices) }
    }
}
