/// The ports an importer may listen on (`--port-range LOW-HIGH`, the agent's `dataPortRange`),
/// for firewalls that open a fixed range for disk transfers. Written and read as `LOW-HIGH`; a
/// single port may be written alone.
public struct PortRange: Sendable, Equatable, CustomStringConvertible {
    public let low: Int
    public let high: Int

    /// Why a range was refused, worded to follow the key or option that carried it.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    public init(low: Int, high: Int) throws(Invalid) {
        for port in [low, high] where !(1...65535).contains(port) {
            throw Invalid(reason: "port \(port) is not a TCP port from 1 to 65535")
        }
        guard low <= high else { throw Invalid(reason: "the range's first port \(low) is above its last \(high)") }
        (self.low, self.high) = (low, high)
    }

    /// `LOW-HIGH` or `PORT`.
    public init(parsing text: String) throws(Invalid) {
        let numbers = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).compactMap { Int(String($0)) }
        switch numbers.count {
        case 1 where !text.contains("-"): try self.init(low: numbers[0], high: numbers[0])
        case 2: try self.init(low: numbers[0], high: numbers[1])
        default: throw Invalid(reason: "'\(text)' is not a port range; expected LOW-HIGH, e.g. 60000-60100")
        }
    }

    public var ports: ClosedRange<Int> { low...high }
    public var count: Int { high - low + 1 }
    public var description: String { "\(low)-\(high)" }
}
