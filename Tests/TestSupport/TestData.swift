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
        if corpus.count < 300_000 { corpus.append(Data(repeating: 0x41, count: 300_000)) }
        let out = UnsafeMutableRawBufferPointer.allocate(byteCount: size + 270_000, alignment: 8)
        defer { out.deallocate() }
        var filled = 0
        corpus.withUnsafeBytes { source in
            while filled < size {
                let kind = generator.next() % 4
                let length = Int(generator.next() % 262_144) + 4096
                let target = out.baseAddress! + filled
                switch kind {
                case 0:
                    for word in 0..<(length / 8) { target.storeBytes(of: generator.next(), toByteOffset: word * 8, as: UInt64.self) }
                    target.advanced(by: length / 8 * 8).initializeMemory(as: UInt8.self, repeating: 0x5a, count: length % 8)
                case 1:
                    target.initializeMemory(as: UInt8.self, repeating: 0, count: length)
                default:
                    let start = Int(generator.next() % UInt64(source.count - length))
                    target.copyMemory(from: source.baseAddress! + start, byteCount: length)
                }
                filled += length
            }
        }
        try Data(bytesNoCopy: out.baseAddress!, count: size, deallocator: .none).write(to: URL(fileURLWithPath: path))
    }

    /// `size` random bytes.
    public static func writeRandom(_ path: String, size: Int) throws {
        try Data(SecureRandom.bytes(size)).write(to: URL(fileURLWithPath: path))
    }

    /// The SHA-256 of the file, or of its first `length` bytes.
    public static func sha256(_ path: String, length: Int64? = nil) throws -> String {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let digest = IncrementalDigest(.sha256)
        var left = length ?? .max
        while left > 0, let chunk = try handle.read(upToCount: Int(min(left, 8 << 20))), !chunk.isEmpty {
            chunk.withUnsafeBytes { digest.update($0) }
            left -= Int64(chunk.count)
        }
        return Hex.encode(digest.snapshot())
    }

    /// Whether every byte of the file from `offset` on is zero.
    public static func isZero(_ path: String, from offset: Int64) throws -> Bool {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(offset))
        while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty {
            if chunk.contains(where: { $0 != 0 }) { return false }
        }
        return true
    }
}

/// A small deterministic generator, so test data is the same on every run and a fuzz failure
/// can be replayed from its seed.
public struct SplitMix64: RandomNumberGenerator, Sendable {
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

extension TestData {
    /// A sparse file of `size` bytes with `dataRanges` (offset, length) filled with mixed data.
    public static func writeSparse(_ path: String, size: Int64, dataRanges: [(Int64, Int)], seed: UInt64 = 3) throws {
        FileManager.default.createFile(atPath: path, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.truncate(atOffset: UInt64(size))
        let scratch = TemporaryDirectory("sparse-fill")
        for (index, (offset, length)) in dataRanges.enumerated() {
            let piece = scratch.file("piece\(index)")
            try writeMixed(piece, size: length, seed: seed + UInt64(index))
            try handle.seek(toOffset: UInt64(offset))
            try handle.write(contentsOf: Data(contentsOf: URL(fileURLWithPath: piece)))
        }
    }

    /// Bytes the file system actually holds for `path`.
    public static func allocatedBytes(_ path: String) -> Int64 {
        var info = stat()
        guard stat(path, &info) == 0 else { return -1 }
        return Int64(info.st_blocks) * 512
    }

    /// gnt-move/1's whole-disk digest, computed independently of gnt-move's code: the digest over
    /// the digest of each 1 MiB chunk. BLAKE3 (what two current ends choose) comes from the
    /// `b3sum` command (Rust's implementation, where gnt-move uses the C one); SHA-256 from
    /// OpenSSL.
    public static func chunkedDigest(_ path: String, algorithm: String = "blake3") throws -> String {
        let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        guard algorithm == "blake3" else {
            let outer = IncrementalDigest(.sha256)
            while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
                outer.update(MessageAuthentication.digest(.sha256, Array(chunk)))
            }
            return "sha256-chunks-1m:" + Hex.encode(outer.snapshot())
        }
        let scratch = TemporaryDirectory("b3")
        var chunks: [String] = []
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            let file = scratch.file(String(format: "%08d", chunks.count))
            try chunk.write(to: URL(fileURLWithPath: file))
            chunks.append(file)
        }
        func b3sum(_ files: [String]) throws -> [String] {
            let result = try runProcess("/usr/bin/b3sum", ["--no-names"] + files)
            guard result.status == 0 else { throw TestFailure("b3sum failed (scripts/setup installs it): \(result.stderr)") }
            return result.stdout.split(separator: "\n").map(String.init)
        }
        let digests = try b3sum(chunks)
        guard digests.count == chunks.count else { throw TestFailure("b3sum gave \(digests.count) digests for \(chunks.count) chunks") }
        let joined = scratch.file("digests")
        try Data(digests.flatMap(bytes(hex:))).write(to: URL(fileURLWithPath: joined))
        return "blake3-chunks-1m:" + (try b3sum([joined]).first ?? "")
    }

    /// The bytes a lowercase hexadecimal string spells (an odd last digit is dropped).
    static func bytes(hex: String) -> [UInt8] {
        let digits = Array(hex.utf8).compactMap { UInt8(String(UnicodeScalar($0)), radix: 16) }
        return stride(from: 0, to: digits.count - 1, by: 2).map { digits[$0] << 4 | digits[$0 + 1] }
    }
}

/// A test helper that could not do its work.
public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
