/// Why a transfer failed, worded for an operator. It ends up in the status file's
/// `error_message` and in the daemon's last line on stderr.
public struct BlockStreamError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        case configuration, connect, handshake, magic, compression, source, destination, destinationFull
        /// The importer could not listen: the address, the port, or every port of its range.
        case listen
        case truncated, timeout, protocolError, integrity, journal
        /// More data than the destination's allotted size.
        case beyondDestination
        /// A resume journal written for another destination file or device.
        case journalOfAnotherDestination
        /// `--abort-after`: the exporter stopped as asked (a simulated crash; never resumed).
        case stoppedAsAsked
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// Seconds on a monotonic clock, for deadlines and rates.
public enum Monotonic {
    public static func now() -> Double {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
    }
}

#if canImport(Glibc)
import Glibc
#endif

func systemError(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
