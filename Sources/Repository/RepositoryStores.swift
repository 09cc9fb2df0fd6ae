import Foundation
import S3
import Storage
import Synchronization

/// The store a `--repo` location names: a folder store for a path, a bucket store for `s3://BUCKET/PREFIX`.
///
/// A bucket's client (its connection pool and event loop) is made once per process and endpoint and lives as long as
/// the process: every repository of a run shares it, and an S3 client is never shut down under a request.
enum RepositoryStores {
    /// Whether `http://` endpoints other than loopback are allowed (`--allow-http`). Process-wide because the
    /// location travels through every use case as a string; set once by the command line before any store is made.
    static let allowsPlainHTTP = Atomic<Bool>(false)

    /// How many times a bucket's failed request (5xx, SlowDown, a dropped or refused connection) is tried again
    /// (`--retries`). Process-wide like ``allowsPlainHTTP``, and set as early.
    static let bucketRetries = Atomic<Int>(5)

    private static let clients = Mutex<[String: S3Client]>([:])

    /// The store of `root`, sealed when the repository there is encrypted (``RepositorySealing``); a bucket that
    /// cannot be reached as configured (no credentials, a bad endpoint), or an encrypted repository without its key,
    /// is a store whose every call fails with that reason, so that the caller's first step reports it in one line.
    static func store(for root: String) -> any ObjectStore {
        let base = baseStore(for: root)
        return base is UnavailableStore ? base : RepositorySealing.store(over: base, root: root)
    }

    /// The store of `root` as it is, objects sealed or not.
    static func baseStore(for root: String) -> any ObjectStore {
        let address: BucketAddress?
        do throws(RepositoryError) { address = try BucketAddress.parse(root) } catch {
            return UnavailableStore(location: root, error: StoreError(.invalidKey, error.message))
        }
        guard let address else { return FolderStore(root: root) }
        do throws(StoreError) {
            return try BucketStore(
                client: try client(), bucket: address.bucket, prefix: address.prefix?.description ?? "")
        } catch {
            return UnavailableStore(location: address.url, error: error)
        }
    }

    /// The process's client for the endpoint the environment names.
    private static func client() throws(StoreError) -> S3Client {
        var configuration: S3Configuration
        do throws(S3Error) {
            configuration = try S3Configuration.fromEnvironment(
                ProcessInfo.processInfo.environment, allowHTTP: allowsPlainHTTP.load(ordering: .relaxed))
        } catch {
            throw StoreError(.io, error.message, cause: error)
        }
        configuration.retries = bucketRetries.load(ordering: .relaxed)
        let key = "\(configuration.endpoint) \(configuration.region) \(configuration.credentials.accessKeyID)"
        return try clients.withLock { clients throws(StoreError) -> S3Client in
            if let client = clients[key] { return client }
            do throws(S3Error) {
                let client = try S3Client(configuration)
                clients[key] = client
                return client
            } catch {
                throw StoreError(.io, error.message, cause: error)
            }
        }
    }
}

extension RepositoryLocation {
    /// Allows `http://` S3 endpoints other than loopback for the rest of the process (`--allow-http`).
    public static func allowPlainHTTP(_ allowed: Bool) {
        RepositoryStores.allowsPlainHTTP.store(allowed, ordering: .relaxed)
    }

    /// Tries a bucket's failed requests `retries` times before failing (`--retries`), for the rest of the process.
    public static func retryBucketRequests(_ retries: Int) {
        RepositoryStores.bucketRetries.store(retries, ordering: .relaxed)
    }
}
