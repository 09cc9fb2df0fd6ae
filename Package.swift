// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Pullback",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "NBD", targets: ["NBD"]),
        .library(name: "QCOW2", targets: ["QCOW2"]),
        .library(name: "Engine", targets: ["Engine"]),
        .library(name: "Repository", targets: ["Repository"]),
        .library(name: "Backup", targets: ["Backup"]),
        .library(name: "Libvirt", targets: ["Libvirt"]),
        .executable(name: "pullback", targets: ["pullback"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.0"),
        // 1.16: LogHandler's log(event:), which replaces the deprecated flat-parameter requirement.
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // MARK: C libraries, found by pkg-config
        .systemLibrary(
            name: "CLibNBD",
            pkgConfig: "libnbd",
            providers: [.apt(["libnbd-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        .systemLibrary(
            name: "CLibvirt",
            pkgConfig: "libvirt",
            providers: [.apt(["libvirt-dev"])]
        ),

        /// Linux file calls Swift's Glibc module does not export: hole punching, early writeback.
        .target(name: "CLinuxIO"),

        // MARK: Libraries
        .target(name: "NBD", dependencies: ["CLibNBD"]),
        .target(name: "Libvirt", dependencies: ["CLibvirt"]),
        /// qcow2 images in Swift; zlib only to inflate compressed clusters that qemu-img wrote.
        .target(name: "QCOW2", dependencies: ["CZlib", "CLinuxIO"]),
        .target(
            name: "Engine",
            dependencies: [
                "NBD",
                "QCOW2",
                "CLinuxIO",
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        /// The on-disk layout of backups: points, manifests, image digests, locking, commit by rename.
        .target(
            name: "Repository",
            dependencies: [
                .product(name: "Crypto", package: "swift-crypto"), .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        /// The coordinator: level, libvirt's pull backup, the engine per disk, the repository commit.
        .target(
            name: "Backup",
            dependencies: ["Libvirt", "Engine", "Repository", .product(name: "Logging", package: "swift-log")]
        ),
        .target(
            name: "PullbackCommands",
            dependencies: [
                "Backup",
                "Engine",
                "QCOW2",
                "Repository",
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
        .testTarget(name: "EngineTests", dependencies: ["Engine"]),
        .testTarget(name: "NBDTests", dependencies: ["NBD"]),
        .testTarget(name: "LibvirtTests", dependencies: ["Libvirt"]),
        .testTarget(name: "QCOW2Tests", dependencies: ["QCOW2"]),
        .testTarget(name: "RepositoryTests", dependencies: ["Repository"]),
        .testTarget(name: "BackupTests", dependencies: ["Backup", "Libvirt", "Repository"]),
        .testTarget(name: "CopyTests", dependencies: ["NBD"]),
    ]
)
