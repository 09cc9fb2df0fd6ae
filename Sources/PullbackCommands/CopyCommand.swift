import ArgumentParser
import Engine
import Foundation

/// `pullback copy`: an NBD export into a sparse raw file, in full or only its dirty extents.
struct CopyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy",
        abstract: "Copy an NBD export into a sparse raw file, in full or only what a dirty bitmap marks.",
        discussion: """
            raw (default): without TARGET present, makes a full copy: data is copied, holes and zeros stay \
            holes. With TARGET present and --bitmap, updates TARGET in place with the extents dirty in that \
            bitmap. qcow2: makes a new standalone image, or with --bitmap and --backing PARENT a new overlay \
            holding only the dirty extents, backed by PARENT. The copy is flushed to disk before the command \
            reports success.
            """
    )

    @Argument(
        help: """
            NBD URI of the source, over TCP or a unix socket: nbd+unix:///EXPORT?socket=PATH, nbd://HOST:PORT/EXPORT, \
            or with TLS nbds://HOST:PORT/EXPORT?tls-certificates=DIR.
            """)
    var source: String

    @Argument(help: "Raw image file to create, or to update with --bitmap.", completion: .file())
    var target: String

    @OptionGroup var tls: SourceTLSOption

    @Option(help: "Target format: raw or qcow2.")
    var format: TargetFormat = .raw

    @OptionGroup var compression: CompressionOption

    @Option(help: "Copy only the extents dirty in qemu:dirty-bitmap:NAME.")
    var bitmap: String?

    @Option(
        help: "With --format qcow2 and --bitmap: the previous point's image, which the new overlay is backed by.",
        completion: .file())
    var backing: String?

    @Flag(help: "Let the --backing chain hold a block or character device (refused by default; FIFOs always are).")
    var allowDevices = false

    @OptionGroup var connections: ConnectionsOption

    @OptionGroup var faults: FaultOptions

    @OptionGroup var rateLimit: RateLimitOption

    @Flag(help: "Replace an existing TARGET with a full copy.")
    var overwrite = false

    @OptionGroup var progress: ProgressOption

    @Flag(help: "Print a JSON summary on stdout when done.")
    var json = false

    @Option(help: ArgumentHelp("Bytes per read request, a power of two from 64 KiB to 32 MiB.", visibility: .hidden))
    var requestSize = TransferOptions.defaultRequestSize

    @Option(help: ArgumentHelp("Requests in flight per connection (1-64).", visibility: .hidden))
    var requestsPerConnection = TransferOptions.defaultRequestsPerConnection

    func validate() throws {
        try tls.validate(source: source)
        guard (1...64).contains(requestsPerConnection) else {
            throw ValidationError("--requests-per-connection must be from 1 to 64")
        }
        guard requestSize.nonzeroBitCount == 1, (64 << 10...32 << 20).contains(requestSize) else {
            throw ValidationError("--request-size must be a power of two from 65536 to 33554432")
        }
        if let bitmap, bitmap.isEmpty { throw ValidationError("--bitmap needs a bitmap name") }
    }

    func run() async throws {
        if let problem = tls.secretProblem(source: source) {
            Terminal.printError(problem)
            throw ExitCode.failure
        }
        var request = CopyRequest(sourceURI: tls.uri(for: source), targetPath: target, format: format)
        (request.backingPath, request.bitmap, request.overwrite) = (backing, bitmap, overwrite)
        request.backingMayBeDevice = allowDevices
        request.compression = compression.compress ?? .none
        request.transfer = TransferOptions(connections: connections.count)
        (request.transfer.requestSize, request.transfer.requestsPerConnection) = (requestSize, requestsPerConnection)
        (request.transfer.retry, request.transfer.stallTimeout) = (faults.retry, faults.stall)
        request.transfer.rateLimiter = rateLimit.makeLimiter()
        let showProgress = progress.isShown
        request.transfer.measureTotal = showProgress
        let copy = request
        let counters = CopyProgress()
        let summary = try await Interruptible.run { () throws(CopyError) in
            try await ProgressBar.while(showing: showProgress, counters) { () throws(CopyError) in
                try await Copy.run(CopyDescription(copy), progress: counters)
            }
        }
        if json {
            print(try JSONOutput.line(summary))
        } else {
            print(summary.sentence(target: target))
        }
    }
}

extension CopySummary {
    /// One line for people: what was done, how much, how fast.
    func sentence(target: String) -> String {
        let what =
            switch (mode, format) {
            case (.full, _): "full copy"
            case (.incremental, .raw): "incremental update"
            case (.incremental, .qcow2): "incremental overlay"
            }
        return "\(what) of \(ByteCount(exportSize)) into \(target): \(ByteCount(bytesWritten)) copied, "
            + "\(ByteCount(zeroBytes)) zero, \(extents) extents, "
            + String(format: "%.2f s", seconds) + ", \(connections) connection\(connections == 1 ? "" : "s")"
            + RetryCount.phrase(retries)
    }
}

/// How a summary line mentions requests tried again: not at all when there were none.
enum RetryCount {
    static func phrase(_ retries: Int) -> String {
        retries == 0 ? "" : ", \(retries) failed request\(retries == 1 ? "" : "s") retried"
    }
}

extension TargetFormat: ExpressibleByArgument {}
