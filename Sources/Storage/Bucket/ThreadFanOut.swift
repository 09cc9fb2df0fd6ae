import Foundation
import Synchronization

/// Blocking calls run side by side on threads of their own, never on Swift's cooperative pool: many small requests
/// (deleting a tree's objects, aborting uploads) take one round trip each, and a few at once take a fraction of the
/// time.
enum ThreadFanOut {
    /// Runs `body` for each of `items` on at most `width` threads and returns once all have ended. After a failure
    /// no further item is started; the first failure is thrown.
    static func forEach<Item: Sendable>(
        _ items: [Item], width: Int, _ body: @escaping @Sendable (Item) throws(StoreError) -> Void
    ) throws(StoreError) {
        let threads = min(width, items.count)
        guard threads > 1 else {
            for item in items { try body(item) }
            return
        }
        let progress = FanOutProgress()
        let ended = DispatchGroup()
        for _ in 0..<threads {
            ended.enter()
            let thread = Thread {
                defer { ended.leave() }
                while true {
                    let index = progress.state.withLock { state -> Int? in
                        guard state.failure == nil, state.next < items.count else { return nil }
                        defer { state.next += 1 }
                        return state.next
                    }
                    guard let index else { return }
                    do throws(StoreError) { try body(items[index]) } catch {
                        progress.state.withLock { $0.failure = $0.failure ?? error }
                    }
                }
            }
            thread.start()
        }
        ended.wait()
        if let failure = progress.state.withLock({ $0.failure }) { throw failure }
    }
}

/// The next item to start and the first failure, shared by a fan-out's threads.
private final class FanOutProgress: Sendable {
    let state = Mutex<(next: Int, failure: StoreError?)>((0, nil))
}
