import Storage
import UntrustedText

/// A repository in a bucket, as `--repo s3://BUCKET/PREFIX` names it: the bucket and the key prefix the repository's
/// objects are under (none for the bucket's top).
public struct BucketAddress: Sendable, Equatable {
    /// The bucket: 3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit.
    public var bucket: String
    /// The prefix the repository's keys start with, each part a valid ``Storage/ObjectKey`` name; nil for the top.
    public var prefix: ObjectKey?

    /// The URL scheme of a bucket repository.
    public static let scheme = "s3"

    /// Parses `s3://BUCKET[/PREFIX]`; nil when `location` is not an `s3://` URL at all, and
    /// ``RepositoryError/Code/invalidName`` in one line when it is one but names no valid bucket or prefix.
    public static func parse(_ location: String) throws(RepositoryError) -> BucketAddress? {
        guard let scheme = RepositoryLocation.scheme(of: location), scheme.lowercased() == Self.scheme else {
            return nil
        }
        let rest = location.dropFirst(scheme.count + 3)
        let bucket = String(rest.prefix { $0 != "/" })
        guard isValidBucket(bucket) else {
            throw RepositoryError(
                .invalidName,
                "\(UntrustedText.escaped(location)) names no valid bucket: a bucket name has 3 to 63 lowercase letters, digits, dots and hyphens, and starts and ends with a letter or digit"
            )
        }
        var parts = rest.dropFirst(bucket.count).split(separator: "/", omittingEmptySubsequences: false).map(
            String.init)
        if parts.first == "" { parts.removeFirst() }
        if parts.last == "" { parts.removeLast() }
        guard !parts.isEmpty else { return BucketAddress(bucket: bucket, prefix: nil) }
        let control = parts.contains { $0.unicodeScalars.contains { $0.value < 0x20 || $0.value == 0x7f } }
        do throws(StoreError) {
            if control { throw StoreError(.invalidKey, "it holds a control character") }
            return BucketAddress(bucket: bucket, prefix: try ObjectKey(components: parts))
        } catch {
            throw RepositoryError(
                .invalidName,
                "\(UntrustedText.escaped(location)) has no valid prefix: \(error.message); give names separated by single slashes, without . or .."
            )
        }
    }

    /// The address as `s3://BUCKET/PREFIX`.
    public var url: String { "s3://" + bucket + (prefix.map { "/" + $0.description } ?? "") }

    private static func isValidBucket(_ name: String) -> Bool {
        let scalars = Array(name.unicodeScalars)
        func letterOrDigit(_ scalar: Unicode.Scalar) -> Bool {
            ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar)
        }
        guard (3...63).contains(scalars.count), let first = scalars.first, let last = scalars.last,
            letterOrDigit(first), letterOrDigit(last)
        else { return false }
        return scalars.allSatisfy { letterOrDigit($0) || $0 == "." || $0 == "-" } && !name.contains("..")
    }
}
