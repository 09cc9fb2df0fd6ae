import ArgumentParser
import Engine
import QCOW2

/// `pullback image-info`: an image's backing chain and what each layer holds, from Pullback's own reader.
struct ImageInfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "image-info",
        abstract: "Show a qcow2 image's backing chain, virtual size, and allocated, data and zero bytes per layer."
    )

    @Argument(help: "The qcow2 image (the top of a chain).", completion: .file())
    var image: String

    @Flag(help: "Print the report as one JSON object.")
    var json = false

    @Flag(help: "Also read block and character devices in the chain (refused by default; FIFOs always are).")
    var allowDevices = false

    func run() async throws {
        let report: ImageReport
        do {
            report = try await ImageInspection.report(path: image, allowDevices: allowDevices)
        } catch {
            Terminal.printError(error.message)
            throw ExitCode.failure
        }
        if json {
            print(try JSONOutput.line(report))
            return
        }
        // Backing file names come from the images' headers, which anyone may have written: escaped.
        print("image: \(Terminal.escaped(report.image))")
        print("virtual size: \(ByteCount(report.virtualSize)) (\(report.virtualSize) bytes)")
        print("layers, top first:")
        for (index, layer) in report.layers.enumerated() {
            let compression = layer.compressionType.map { ", compression \($0)" } ?? ""
            let backing = layer.backingFile.map { ", backing file \($0)" } ?? ""
            let cluster = ByteCount(UInt64(layer.clusterSize))
            print(
                Terminal.escaped(
                    "  \(index): \(layer.path) (\(layer.format), cluster \(cluster)\(compression)\(backing))"))
            print(
                "     on disk \(ByteCount(layer.allocatedBytes)), data \(ByteCount(layer.dataBytes)), "
                    + "zero \(ByteCount(layer.zeroBytes))")
        }
    }
}
