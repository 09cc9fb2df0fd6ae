import Foundation
import Synchronization

/// libvirt's cache of QEMU's capabilities, probed once per test process and copied into every new guest's libvirt.
///
/// Each guest runs in a fresh root (the embedded driver's `ROOT/cache`, or a private libvirtd's `/var/cache/libvirt`),
/// so without a copy the first `virsh define` of every test starts QEMU to probe what it can do: one to four seconds
/// a test. libvirt checks a cached file against the QEMU binary, libvirt itself and the host before using it and
/// probes again when anything differs, so a copy can only spare the probe, never change what the driver sees.
enum CapabilitiesCache {
    /// The files of `cache/qemu/capabilities` kept from the first guest of each driver (an embedded driver and a
    /// libvirtd are separate builds of the driver and may not accept each other's files), by name.
    private static let kept = Mutex<[LibvirtDriverBuild: [String: Data]]>([:])

    /// Which build of libvirt's QEMU driver probed a file.
    enum LibvirtDriverBuild: Hashable {
        case embedded, daemon
    }

    /// The capabilities folder under a libvirt cache folder (`ROOT/cache` or a daemon's stand-in for
    /// `/var/cache/libvirt`).
    static func folder(in cache: String) -> String { cache + "/qemu/capabilities" }

    /// Writes the files kept for `build`, if any, into the capabilities folder under `cache`.
    static func seed(_ cache: String, for build: LibvirtDriverBuild) throws {
        let files = kept.withLock { $0[build] } ?? [:]
        guard !files.isEmpty else { return }
        let folder = folder(in: cache)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (name, data) in files where !FileManager.default.fileExists(atPath: folder + "/" + name) {
            try data.write(to: URL(fileURLWithPath: folder + "/" + name))
        }
    }

    /// Keeps the capabilities files under `cache` for `build` when none are kept yet (after a guest was defined).
    static func keep(_ cache: String, for build: LibvirtDriverBuild) {
        guard kept.withLock({ $0[build] == nil }) else { return }
        let folder = folder(in: cache)
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter {
            $0.hasSuffix(".xml")
        }
        var files: [String: Data] = [:]
        for name in names {
            guard let data = FileManager.default.contents(atPath: folder + "/" + name), !data.isEmpty else { continue }
            files[name] = data
        }
        guard !files.isEmpty else { return }
        kept.withLock { if $0[build] == nil { $0[build] = files } }
    }
}
