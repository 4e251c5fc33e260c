import Foundation

/// A bounded mutation fuzzer for JSON request bodies. It starts from valid bodies and applies
/// byte-level mutations (flips, insertions, deletions, splices) and token-level ones (huge and
/// odd numbers, long strings, invalid UTF-8, broken escapes, deep nesting).
///
/// `GNT_MOVE_FUZZ_SECONDS` sets how long a run lasts (default: `defaultSeconds`, a few seconds
/// for CI); `GNT_MOVE_FUZZ_SEED` fixes the seed (default: a constant, so runs are reproducible).
public struct JSONFuzzer {
    public var random: SplitMix64
    public let seed: UInt64
    public let seeds: [[UInt8]]

    public init(seeds: [String], defaultSeed: UInt64 = 0x676E_742D_6D6F_7665) {
        let environment = ProcessInfo.processInfo.environment
        seed = environment["GNT_MOVE_FUZZ_SEED"].flatMap { UInt64($0) } ?? defaultSeed
        random = SplitMix64(seed: seed)
        self.seeds = seeds.map { Array($0.utf8) }
    }

    /// How long to fuzz: `GNT_MOVE_FUZZ_SECONDS`, or `defaultSeconds`.
    public static func duration(default defaultSeconds: Double) -> Double {
        ProcessInfo.processInfo.environment["GNT_MOVE_FUZZ_SECONDS"].flatMap(Double.init).map { max(0, $0) } ?? defaultSeconds
    }

    /// Values that have broken JSON parsers and the code behind them.
    public static let interestingTokens: [String] = [
        "1e400", "-1e400", "1e-400", "18446744073709551616", "18446744073709551615", "9223372036854775807",
        "9223372036854775808", "-9223372036854775808", "-9223372036854775809", "-0", "-0.0", "0e0", "1E+2",
        "4294967296", "1" + String(repeating: "0", count: 400), "0." + String(repeating: "0", count: 400) + "1",
        "1.7976931348623157e308", "5e-324", "NaN", "Infinity", "-Infinity", "01", "1.", ".1", "+1", "0x10",
        "true", "false", "null", "nul", "[]", "{}", "[", "]", "{", "}", ",", ":", "\"", "\\",
        "\"\\u0000\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\udc00\"", "\"\\ud800\\u0041\"", "\"\\uDBFF\\uDFFF\"",
        "\"\\u00\"", "\"\\x41\"", "\"\\\"", "\"" + String(repeating: "a", count: 70_000) + "\"",
        "\"" + String(repeating: "\\u00e9", count: 5_000) + "\"", "\"\u{1F600}\"", "\"\\/\"",
    ]

    /// Byte sequences that are not UTF-8, or that are but should not be trusted.
    public static let oddBytes: [[UInt8]] = [
        [0xFF], [0xC0, 0x80], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x80], [0x00],
        [0xEF, 0xBB, 0xBF], [0x22, 0xFF, 0x22], [0x22, 0xC3, 0x28, 0x22], [0x22, 0x0A, 0x22], [0x7F],
    ]

    public mutating func int(_ range: Range<Int>) -> Int { Int.random(in: range, using: &random) }

    /// Nesting far beyond any limit: `[[[[...`, `{"a":{"a":...`, mixed, closed or not.
    public mutating func deepNesting() -> [UInt8] {
        let depth = [255, 256, 257, 1_000, 100_000][int(0..<5)]
        let closed = int(0..<2) == 0
        switch int(0..<3) {
        case 0:
            return Array((String(repeating: "[", count: depth) + (closed ? String(repeating: "]", count: depth) : "")).utf8)
        case 1:
            return Array((String(repeating: "{\"a\":", count: depth) + "1" + (closed ? String(repeating: "}", count: depth) : "")).utf8)
        default:
            return Array((String(repeating: "[{\"k\":", count: depth / 2) + "0" + (closed ? String(repeating: "}]", count: depth / 2) : "")).utf8)
        }
    }

    /// One input: usually a mutated seed, sometimes deep nesting or a bare token.
    public mutating func next() -> [UInt8] {
        switch int(0..<20) {
        case 0: return deepNesting()
        case 1: return Array(Self.interestingTokens[int(0..<Self.interestingTokens.count)].utf8)
        default:
            var bytes = seeds[int(0..<seeds.count)]
            for _ in 0..<(1 + int(0..<4)) { mutate(&bytes) }
            return bytes
        }
    }

    /// One mutation in place.
    public mutating func mutate(_ bytes: inout [UInt8]) {
        if bytes.isEmpty { bytes = Array(Self.interestingTokens[int(0..<Self.interestingTokens.count)].utf8); return }
        let position = int(0..<bytes.count)
        switch int(0..<9) {
        case 0: bytes[position] ^= UInt8(1 << int(0..<8))
        case 1: bytes[position] = UInt8(truncatingIfNeeded: int(0..<256))
        case 2: bytes.insert(UInt8(truncatingIfNeeded: int(0..<256)), at: position)
        case 3: bytes.removeSubrange(position..<min(bytes.count, position + 1 + int(0..<16)))
        case 4:
            // Splice a chunk of the input into another place of it.
            let length = min(bytes.count - position, 1 + int(0..<32))
            let chunk = Array(bytes[position..<position + length])
            bytes.insert(contentsOf: chunk, at: int(0..<bytes.count))
        case 5:
            bytes.insert(contentsOf: Self.oddBytes[int(0..<Self.oddBytes.count)], at: position)
        case 6, 7:
            // Replace a number, a string or a literal with an interesting token.
            let token = Array(Self.interestingTokens[int(0..<Self.interestingTokens.count)].utf8)
            if let range = Self.scalarRange(in: bytes, near: position) {
                bytes.replaceSubrange(range, with: token)
            } else {
                bytes.insert(contentsOf: token, at: position)
            }
        default:
            bytes = Array(bytes[0..<position])  // truncation
        }
    }

    /// The extent of the JSON number, string or literal around `position`, if there is one.
    static func scalarRange(in bytes: [UInt8], near position: Int) -> Range<Int>? {
        var start = position
        while start < bytes.count, !isScalarStart(bytes[start]) { start += 1 }
        guard start < bytes.count else { return nil }
        var end = start + 1
        if bytes[start] == UInt8(ascii: "\"") {
            while end < bytes.count, bytes[end] != UInt8(ascii: "\"") { end += bytes[end] == UInt8(ascii: "\\") ? 2 : 1 }
            end = min(end + 1, bytes.count)
        } else {
            while end < bytes.count, isScalarByte(bytes[end]) { end += 1 }
        }
        return start..<end
    }

    static func isScalarStart(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "-") || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: "t") || byte == UInt8(ascii: "f") || byte == UInt8(ascii: "n")
    }

    static func isScalarByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
            || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "E")
    }
}
