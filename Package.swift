// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Pullback",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "NBD", targets: ["NBD"]),
        .library(name: "QCOW2", targets: ["QCOW2"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Storage", targets: ["Storage"]),
        .library(name: "Repository", targets: ["Repository"]),
        .library(name: "Backup", targets: ["Backup"]),
        .library(name: "Libvirt", targets: ["Libvirt"]),
        .executable(name: "pullback", targets: ["pullback"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.1.0"),
        // 1.16: LogHandler's log(event:), which replaces the deprecated flat-parameter requirement.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        // The S3 target's HTTP client: connection pool, TLS, timeouts.
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.24.0"),
        // Tests only: every tool and server the tests start runs through Subprocess (TestSupport).
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.0"),
        // `backup --metrics-file`: the Prometheus text format of node_exporter's textfile collector.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // MARK: C libraries, found by pkg-config
        .systemLibrary(
            name: "CLibNBD",
            pkgConfig: "libnbd",
            providers: [.apt(["libnbd-dev", "libgnutls28-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CZstd",
            pkgConfig: "libzstd",
            providers: [.apt(["libzstd-dev"])]
        ),
        .systemLibrary(
            name: "CLibvirt",
            pkgConfig: "libvirt",
            providers: [.apt(["libvirt-dev"])]
        ),

        /// Linux file calls Swift's Glibc module does not export: hole punching, early writeback.
        .target(name: "CLinuxIO"),
        /// Package-internal: the file calls swift-system lacks (fsync, hole punching, writeback, fadvise, flock),
        /// each retried on EINTR, the one offload of blocking file work to NIO's thread pool, and a target file's
        /// writer thread and page-cache window. Shared by QCOW2, Engine and Repository so that each maps `Errno`
        /// to its own error instead of repeating the calls.
        .target(
            name: "FileIO",
            dependencies: [
                "CLinuxIO",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
            ]
        ),

        /// Package-internal: the one escaper for text from outside (names from a repository, an image, libvirt, an
        /// argument), so that every target prints such a string the same way. Its own target because NBD and QCOW2,
        /// which need it too, depend on nothing of the others'.
        .target(name: "UntrustedText"),

        /// Package-internal: the NBD protocol's numbers, shared by the server and the probe.
        .target(name: "NBDProtocol"),

        // MARK: Libraries
        .target(name: "NBD", dependencies: ["CLibNBD", "UntrustedText"]),
        .target(name: "Libvirt", dependencies: ["CLibvirt"]),
        /// qcow2 images in Swift; zlib only to inflate compressed clusters that qemu-img wrote.
        .target(
            name: "QCOW2",
            dependencies: [
                "CZlib", "CZstd", "FileIO", "UntrustedText",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Engine",
            dependencies: [
                "NBD",
                "QCOW2",
                "FileIO",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        /// Named objects under one root (the seam where a folder can become a bucket): ranged reads, streamed writes
        /// visible when complete, listing, deletion, locks; the local folder store and the S3 bucket store.
        .target(
            name: "Storage",
            dependencies: [
                "FileIO", "S3", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        /// Sealed objects: authenticated encryption (AES-256-GCM) in frames that keep random access, over any store.
        .target(
            name: "Sealing",
            dependencies: [
                "Storage", .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
            ]
        ),
        /// The layout of backups over a store: points, manifests, image digests, locking, commit.
        .target(
            name: "Repository",
            dependencies: [
                "FileIO",
                "QCOW2",
                "S3",
                "Sealing",
                "Storage",
                "UntrustedText",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        /// The coordinator: level, libvirt's pull backup, the engine per disk, the repository commit.
        /// The read-only NBD server: exports qcow2 chains and raw images to any number of clients (SwiftNIO), with TLS
        /// (swift-nio-ssl) when asked.
        .target(
            name: "Server",
            dependencies: [
                "QCOW2", "FileIO", "NBDProtocol", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        /// `pullback probe`: an NBD client of its own (SwiftNIO, TLS with swift-nio-ssl) that speaks the protocol byte by
        /// byte, so that it sees what a server sends rather than what a library makes of it, and judges it check by
        /// check.
        .target(
            name: "Probe",
            dependencies: [
                "NBD", "NBDProtocol", "UntrustedText", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        /// An S3 client: configuration from the AWS environment, Signature Version 4, the object and multipart calls
        /// with retries, XML responses; each call blocks its caller.
        .target(
            name: "S3",
            dependencies: [
                "UntrustedText", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .target(
            name: "Backup",
            dependencies: [
                "Libvirt", "NBD", "Engine", "Repository", "Storage", "Server", "UntrustedText", "FileIO",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "PullbackCommands",
            dependencies: [
                "Backup",
                "Engine",
                "NBD",
                "QCOW2",
                "Probe",
                "Repository",
                "Server",
                "UntrustedText",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),

        // MARK: Executable: parses arguments and prints, nothing else
        .executableTarget(
            name: "pullback",
            dependencies: ["PullbackCommands", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),

        // MARK: Tests
        /// What every test target shares: starting and stopping tools and servers (swift-subprocess), temporary
        /// directories, command results, a SeaweedFS server with a bucket and an S3 client of it.
        .target(
            name: "TestSupport",
            dependencies: [
                "S3",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "QCOW2", "TestSupport"]),
        .testTarget(name: "FileIOTests", dependencies: ["FileIO", "TestSupport"]),
        .testTarget(name: "NBDTests", dependencies: ["NBD", "TestSupport"]),
        .testTarget(name: "LibvirtTests", dependencies: ["Libvirt", "TestSupport"]),
        .testTarget(
            name: "QCOW2Tests",
            dependencies: ["QCOW2", "TestSupport", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(
            name: "StorageTests",
            dependencies: [
                "Storage", "S3", "TestSupport", .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
            ]),
        .testTarget(
            name: "RepositoryTests",
            dependencies: [
                "Repository", "Storage", "TestSupport", .product(name: "SystemPackage", package: "swift-system"),
            ]),
        .testTarget(
            name: "SealingTests",
            dependencies: ["Sealing", "Storage", "S3", "TestSupport"]
        ),
        .testTarget(name: "BackupTests", dependencies: ["Backup", "Libvirt", "Repository", "TestSupport"]),
        /// The NBD server's framing, negotiation and requests, on NIO's EmbeddedChannel.
        .testTarget(
            name: "ServerTests",
            dependencies: [
                "Server", "QCOW2", "TestSupport", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        /// The S3 client: the signer against AWS's published vectors, configuration, and calls against SeaweedFS.
        .testTarget(
            name: "S3Tests",
            dependencies: ["S3", "TestSupport", .product(name: "NIOCore", package: "swift-nio")]
        ),
        /// End to end: the `pullback` executable against real NBD servers, qemu tools and libvirt.
        .testTarget(
            name: "CommandLineTests",
            dependencies: ["NBD", "S3", "TestSupport", .product(name: "NIOCore", package: "swift-nio")]),
        /// The command line's own arithmetic (line fitting, completion words), without running the executable.
        .testTarget(name: "PullbackCommandsTests", dependencies: ["PullbackCommands", "Engine", "UntrustedText"]),
    ]
)
