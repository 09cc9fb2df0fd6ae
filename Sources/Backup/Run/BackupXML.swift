import Foundation

/// The XML documents a pull-mode backup hands to libvirt (see libvirt's formatbackup and
/// formatcheckpoint pages).
enum BackupXML {
    /// How one disk takes part in the backup.
    struct DiskEntry: Equatable {
        var target: String
        /// Copy everything (a disk new since the base checkpoint) rather than changes since the base.
        var full: Bool
        /// Where QEMU keeps the disk's scratch image during the job; nil leaves it to libvirt (on the hypervisor).
        var scratchFile: String?
    }

    /// `<domainbackup mode='pull'>` exporting `disks` on `server` (an ``ExportAddress/serverXML``);
    /// `incrementalFrom` names the base checkpoint, nil for a full backup. Disks not listed are left out
    /// (`backup='no'`).
    static func backup(
        incrementalFrom base: String?, server: String, disks: [DiskEntry], skipped: [String]
    ) -> String {
        var xml = "<domainbackup mode='pull'>\n"
        if let base { xml += "  <incremental>\(escape(base))</incremental>\n" }
        xml += "  \(server)\n  <disks>\n"
        for disk in disks {
            let mode = base != nil ? " backupmode='\(disk.full ? "full" : "incremental")'" : ""
            xml += "    <disk name='\(escape(disk.target))' backup='yes' type='file'\(mode)>"
            xml += disk.scratchFile.map { "<scratch file='\(escape($0))'/>" } ?? ""
            xml += "</disk>\n"
        }
        for target in skipped { xml += "    <disk name='\(escape(target))' backup='no'/>\n" }
        xml += "  </disks>\n</domainbackup>\n"
        return xml
    }

    /// `<domaincheckpoint>` named `name`, with a bitmap on each of `disks` and none on `skipped`. Its `<description>`
    /// is `description` (a ``CheckpointDescription``, naming the repository), or `pullback` as older versions wrote.
    static func checkpoint(name: String, description: String? = nil, disks: [String], skipped: [String]) -> String {
        var xml = "<domaincheckpoint>\n  <name>\(escape(name))</name>\n"
        xml += "  <description>\(escape(description ?? "pullback"))</description>\n  <disks>\n"
        for target in disks { xml += "    <disk name='\(escape(target))' checkpoint='bitmap'/>\n" }
        for target in skipped { xml += "    <disk name='\(escape(target))' checkpoint='no'/>\n" }
        xml += "  </disks>\n</domaincheckpoint>\n"
        return xml
    }

    /// Whether a description may hold `scalar` and read back the same: XML 1.0 cannot hold the C0 controls other
    /// than tab and line feed, U+FFFE and U+FFFF (lone surrogates never occur in a Swift string), and a parser reads a
    /// carriage return back as a line feed.
    static func isRecordable(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x09, 0x0A: true
        case 0x00...0x1F, 0xFFFE, 0xFFFF: false
        default: true
        }
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "'", with: "&apos;")
            .replacingOccurrences(of: "\"", with: "&quot;")
    }
}
