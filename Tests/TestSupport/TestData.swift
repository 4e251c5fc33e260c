import Foundation
import OpenSSLSupport

/// Test files with real content.
public enum TestData {
    /// `size` bytes that compress like real disk data: text and binaries from this machine
    /// interleaved with random runs and zeros.
    public static func writeMixed(_ path: String, size: Int, seed: UInt64 = 1) throws {
        var generator = SplitMix64(seed: seed)
        var corpus = Data()
        for file in ["/usr/bin/openssl", "/usr/bin/socat", "/etc/services", "/usr/bin/bash"] {
            if let data = FileManager.default.contents(atPath: file) { corpus.append(data) }
            if corpus.count > 4 << 20 { break }
        }
        if corpus.isEmpty { corpus = Data(repeating: 0x41, count: 1 << 20) }
        var out = Data(capacity: size)
        while out.count < size {
            let kind = generator.next() % 4
            let length = Int(generator.next() % 262_144) + 4096
            switch kind {
            case 0: out.append(Data((0..<length).map { _ in UInt8(truncatingIfNeeded: generator.next()) }))
            case 1: out.append(Data(repeating: 0, count: length))
            default:
                let start = Int(generator.next() % UInt64(max(1, corpus.count - length)))
                out.append(corpus[corpus.startIndex + start ..< corpus.startIndex + min(corpus.count, start + length)])
            }
        }
        try out.prefix(size).write(to: URL(fileURLWithPath: path))
    }

    /// `size` random bytes.
    public static func writeRandom(_ path: String, size: Int) throws {
        try Data(SecureRandom.bytes(size)).write(to: URL(fileURLWithPath: path))
    }

    public static func sha256(_ path: String) throws -> String {
        Hex.encode(MessageAuthentication.digest(.sha256, Array(try Data(contentsOf: URL(fileURLWithPath: path)))))
    }
}

/// A small deterministic generator, so test data is the same on every run.
public struct SplitMix64 {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
