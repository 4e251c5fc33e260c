/// The one spelling of a request path that routing and authorization both see. Every other
/// spelling of a route (trailing slash, doubled slashes, percent-encoded characters) is brought to
/// it, and a path that cannot be brought to it cleanly is refused, so that no spelling reaches a
/// handler by a different rule than the one authorization applied.
public struct RAPIPath: Sendable, Equatable, CustomStringConvertible {
    /// The decoded, non-empty components: `/2//instances/vm1/` is `["2", "instances", "vm1"]`.
    public let components: [String]

    public var description: String { "/" + components.joined(separator: "/") }

    /// Why a path was refused.
    public struct Invalid: Error, Sendable, Equatable {
        public let reason: String
    }

    /// Percent-decodes each component, drops empty ones (doubled and trailing slashes), and
    /// refuses what has no single meaning: `.` and `..`, an encoded `/`, invalid or
    /// double percent-encoding, bytes that are not UTF-8, control characters, `?`, `#` and `\`.
    public init(raw: String) throws(Invalid) {
        guard raw.hasPrefix("/") else { throw Invalid(reason: "the path must start with '/'") }
        var components: [String] = []
        for piece in raw.utf8.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true) {
            let component = try Self.decode(Array(piece))
            if component == "." || component == ".." { throw Invalid(reason: "'.' and '..' are not allowed in a path") }
            components.append(component)
        }
        self.components = components
    }

    /// `GET /2/jobs/ID/wait` blocks and needs a write user; any spelling of `wait` counts.
    public var isJobWait: Bool {
        components.contains { $0.lowercased() == "wait" }
    }

    static func decode(_ bytes: [UInt8]) throws(Invalid) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "%") {
                guard index + 2 < bytes.count, let high = hexValue(bytes[index + 1]), let low = hexValue(bytes[index + 2]) else {
                    throw Invalid(reason: "invalid percent-encoding")
                }
                let decoded = high << 4 | low
                if decoded == UInt8(ascii: "/") { throw Invalid(reason: "an encoded '/' is not allowed in a path") }
                if decoded == UInt8(ascii: "%") { throw Invalid(reason: "double percent-encoding is not allowed in a path") }
                out.append(decoded)
                index += 3
            } else {
                out.append(byte)
                index += 1
            }
        }
        for byte in out {
            if byte < 0x20 || byte == 0x7f { throw Invalid(reason: "control characters are not allowed in a path") }
            if byte == UInt8(ascii: "?") || byte == UInt8(ascii: "#") || byte == UInt8(ascii: "\\") {
                throw Invalid(reason: "'?', '#' and '\\' are not allowed in a path component")
            }
        }
        guard let text = String(validating: out, as: UTF8.self) else { throw Invalid(reason: "the path is not valid UTF-8") }
        return text
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
