import Testing

/// A qcow2 source image in the fixture, written with `qemu-io` and given persistent dirty bitmaps with `qemu-img`,
/// exactly as a guest's writes would mark them. Only touch it while no server is running on it (image locks).
struct QCOW2Image {
    let path: String
    let size: Int
    let fixture: Fixture

    /// `qemu-img create -f qcow2 PATH SIZE` (64 KiB clusters, so the bitmap granularity is 64 KiB).
    static func create(_ fixture: Fixture, name: String = "src.qcow2", size: Int) async throws -> QCOW2Image {
        let path = fixture.path(name)
        try await Qemu.create(path, size: size, using: fixture)
        return QCOW2Image(path: path, size: size, fixture: fixture)
    }

    /// Runs `qemu-io` commands (`write -P 0x11 0 1M`, `write -z 0 64k`, `discard 8M 1M`) in one invocation.
    /// qemu-io exits non-zero when a command fails; its output is checked as well, to be sure.
    func io(_ commands: String...) async throws {
        try await io(commands)
    }

    /// Runs `qemu-io` commands given as an array.
    func io(_ commands: [String]) async throws {
        try await Qemu.io(path, commands, using: fixture)
    }

    /// `qemu-img bitmap --add`: a new persistent bitmap, clean from now on.
    func addBitmap(_ name: String) async throws {
        try await fixture.runChecked(["qemu-img", "bitmap", "--add", path, name])
    }

    /// `qemu-img bitmap --remove`.
    func removeBitmap(_ name: String) async throws {
        try await fixture.runChecked(["qemu-img", "bitmap", "--remove", path, name])
    }

    /// Serves the image read-only with qemu-nbd (multi-conn advertised unless `shared` is 1).
    func serve(
        bitmap: String? = nil,
        exportName: String = "",
        shared: Int = 8,
        throttleBytesPerSecond: Int? = nil
    ) async throws -> NBDServer {
        try await NBDServer.qemuNBD(
            fixture, image: path, bitmap: bitmap, exportName: exportName, shared: shared,
            throttleBytesPerSecond: throttleBytesPerSecond)
    }

    /// The start of an incremental test: `bitmap` added (clean from now on), then the whole image copied by pullback
    /// to `fixture.target()`, which must succeed, with no bitmap asked for. Returns the target.
    func fullCopyWithBitmap(_ bitmap: String) async throws -> String {
        try await addBitmap(bitmap)
        let target = fixture.target()
        let server = try await serve()
        try requireSuccess(try await Pullback.copy(fixture, [server.uri(), target]))
        server.stop()
        return target
    }

    /// The guest-visible content as a raw file (`qemu-img convert -O raw`), the reference to `cmp` targets against.
    func rawReference(name: String = "reference.raw") async throws -> String {
        let reference = fixture.path(name)
        try await Qemu.convertToRaw(path, to: reference, using: fixture)
        return reference
    }
}
