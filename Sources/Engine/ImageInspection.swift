import NIOPosix
import QCOW2

/// Reading image metadata off Swift's cooperative threads.
public enum ImageInspection {
    /// The report of `path` and its backing chain, read on the I/O thread pool.
    public static func report(path: String) async throws(QCOW2Error) -> ImageReport {
        let result: Result<ImageReport, QCOW2Error>
        do {
            result = try await NIOThreadPool.singleton.runIfActive { () -> Result<ImageReport, QCOW2Error> in
                Result { () throws(QCOW2Error) in try ImageReport(path: path) }
            }
        } catch {
            throw QCOW2Error(.io, "cannot inspect \(path): \(error)")
        }
        return try result.get()
    }
}
