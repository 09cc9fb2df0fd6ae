import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// What a bucket's lock object holds: who holds it, where, and until when, so that whoever finds it taken can name
/// the holder and take over a lock whose holder stopped refreshing it. `token` tells this holder's writes apart from
/// another's with the same owner.
struct BucketLockRecord: Codable, Equatable {
    var owner: String
    var host: String
    var pid: Int32
    var token: String
    var expiresAt: Date

    /// The record for `owner` on this host and process, expiring `expiry` from now.
    init(owner: String, token: String, expiry: Duration) {
        self.owner = owner
        host = ProcessInfo.processInfo.hostName
        pid = ProcessInfo.processInfo.processIdentifier
        self.token = token
        expiresAt = Date().addingTimeInterval(Self.seconds(expiry))
    }

    /// The record again, expiring `expiry` from now.
    func renewed(for expiry: Duration) -> BucketLockRecord {
        var record = self
        record.expiresAt = Date().addingTimeInterval(Self.seconds(expiry))
        return record
    }

    /// Whether its holder's time is over. Holders on other hosts are trusted to keep their clocks close to ours.
    var isExpired: Bool { expiresAt < Date() }

    /// Whether its holder is known to be gone: a process of this host that no longer exists (killed, or ended by a
    /// failure that kept it from deleting the lock, such as the store's own outage). A holder on another host is
    /// never known gone: its lock waits for its expiry. A process id reused since is taken for the holder.
    var holderIsGone: Bool {
        guard host == ProcessInfo.processInfo.hostName, pid > 0, pid != ProcessInfo.processInfo.processIdentifier
        else { return false }
        return kill(pid, 0) != 0 && errno == ESRCH
    }

    /// The record as JSON.
    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        // Encoding strings, an integer and a date cannot fail.
        return Array((try? encoder.encode(self)) ?? Data())
    }

    /// The record in `bytes`, nil when they are not one.
    static func decoded(_ bytes: [UInt8]) -> BucketLockRecord? {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try? decoder.decode(BucketLockRecord.self, from: Data(bytes))
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        let (seconds, attoseconds) = duration.components
        return TimeInterval(seconds) + TimeInterval(attoseconds) / 1e18
    }
}
