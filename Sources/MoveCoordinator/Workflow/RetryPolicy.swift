import Foundation

/// How often a move is tried, and how long to wait between tries: the one place that decides.
/// A move that failed for a reason that may pass (`FailureReason.isRetried`) is cleaned up and
/// started again from the beginning with fresh keys; `move`, `run`, `resume` and `batch` all
/// go through it, so retries never nest.
public struct RetryPolicy: Sendable, Equatable {
    /// Tries per move, the first included.
    public var attempts: Int
    /// Seconds before the second try; doubled before each further one.
    public var firstDelay: Double

    public init(attempts: Int, firstDelay: Double) {
        self.attempts = max(1, attempts)
        self.firstDelay = max(0, firstDelay)
    }

    /// Three tries, 2 then 4 seconds apart.
    public static let standard = RetryPolicy(attempts: 3, firstDelay: 2)

    /// Whether a move that ended as `record` after `attempt` tries gets another.
    func retries(_ record: MoveRecord, after attempt: Int) -> Bool {
        record.state == .cleaned && attempt < attempts && record.reason?.isRetried == true
    }

    /// The wait before try `attempt + 1`.
    func delay(after attempt: Int) -> Double { firstDelay * Double(1 << min(max(attempt - 1, 0), 20)) }
}
