import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The record of a gnt-move/1 transfer that lets it resume: which transfer it belongs to, and
/// the digest (BLAKE3 or SHA-256, named in the header) of every chunk done so far, in order.
///
/// On the importer a chunk's digest is appended only after its data is durable (fdatasync
/// first, then the record, then fsync of the journal), so the number of records is the
/// highest contiguous durable offset. The exporter keeps the same record of what it sent, so
/// that a resumed transfer can compute the whole-disk digest without reading the source again.
///
/// Layout: the line `gnt-move-journal 1`, one line of JSON (the binding), then 32-byte records.
/// Records are streamed, never held in memory: a 5 TiB disk has 160 MiB of them.
/// Used by one thread at a time (handed to the writer thread), hence `@unchecked Sendable`.
final class TransferJournal: @unchecked Sendable {
    /// What a journal belongs to. A resumed transfer must match it exactly.
    struct Binding: Codable, Equatable {
        var role: String
        var magic: String?
        var size: Int64
        var chunk_size: Int
        var local_certificate: String
        var peer_certificate: String
        /// The importer's destination: the path it was given and the device and inode it opened,
        /// so that a journal is never applied to another file or device (nil on the exporter).
        var destination: String?
        var destination_device: UInt64?
        var destination_inode: UInt64?
        /// The chunk digest of the records (``ChunkDigestAlgorithm``); absent for SHA-256, so
        /// that journals written before the choice existed still match.
        var digest: String?

        /// How `digest` names an algorithm.
        static func name(of algorithm: ChunkDigestAlgorithm) -> String? { algorithm == .sha256 ? nil : algorithm.rawValue }

        /// Everything but the destination agrees.
        func sameTransfer(as other: Binding) -> Bool {
            var mine = self, theirs = other
            (mine.destination, mine.destination_device, mine.destination_inode) = (nil, nil, nil)
            (theirs.destination, theirs.destination_device, theirs.destination_inode) = (nil, nil, nil)
            return mine == theirs
        }
    }

    static let headerLine = "gnt-move-journal 1\n"
    static let recordSize = 32
    let path: String
    let binding: Binding
    private let fd: Int32
    private let dataStart: Int64
    private(set) var records: Int64

    private init(path: String, binding: Binding, fd: Int32, dataStart: Int64, records: Int64) {
        self.path = path
        self.binding = binding
        self.fd = fd
        self.dataStart = dataStart
        self.records = records
    }

    deinit { close(fd) }

    /// Refuses a symbolic link at the journal's path: the journal is never followed elsewhere.
    static func refuseSymlink(_ path: String) throws(BlockStreamError) {
        var info = stat()
        if lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFLNK { throw symlinkRefusal(path) }
    }

    static func symlinkRefusal(_ path: String) -> BlockStreamError {
        BlockStreamError(.journal, "journal \(path) is a symbolic link; refusing to follow it (remove it to start over)")
    }

    /// Removes the journal at `path`, if any (a symbolic link is removed, never followed).
    static func discard(path: String) { unlink(path) }

    /// Starts a new journal, replacing any old one. A symbolic link at `path` is refused; the
    /// journal is written beside it under a fresh name (O_EXCL, O_NOFOLLOW) and renamed over it.
    static func create(path: String, binding: Binding) throws(BlockStreamError) -> TransferJournal {
        try refuseSymlink(path)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let header = Array(headerLine.utf8) + Array((try? encoder.encode(binding)) ?? Data()) + [0x0a]
        let temporary = path + ".new"
        unlink(temporary)
        let fd = Glibc.open(temporary, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw BlockStreamError(.journal, "cannot create journal \(path): \(systemError())") }
        let written = header.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard written == header.count, fsync(fd) == 0, rename(temporary, path) == 0 else {
            let reason = systemError()
            close(fd)
            throw BlockStreamError(.journal, "cannot write journal \(path): \(reason)")
        }
        return TransferJournal(path: path, binding: binding, fd: fd, dataStart: Int64(header.count), records: 0)
    }

    /// The chunk digest of the journal at `path`, read from its header; nil when there is no
    /// readable journal there (``open(path:expected:)`` then says what is wrong with it).
    static func recordedAlgorithm(path: String) -> ChunkDigestAlgorithm? {
        let fd = Glibc.open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        guard let binding = header(of: fd)?.binding else { return nil }
        guard let name = binding.digest else { return .sha256 }
        return ChunkDigestAlgorithm(rawValue: name)
    }

    /// The header of the journal open at `fd`: its binding and where its records start; nil
    /// when it is not a gnt-move journal.
    private static func header(of fd: Int32) -> (binding: Binding, dataStart: Int64)? {
        var prefix = [UInt8](repeating: 0, count: 4096)
        let n = prefix.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        let lines = (n > 0 ? Array(prefix.prefix(n)) : []).split(separator: 0x0a, maxSplits: 2, omittingEmptySubsequences: false)
        guard lines.count >= 2, String(decoding: lines[0], as: UTF8.self) + "\n" == headerLine,
              let binding = try? JSONDecoder().decode(Binding.self, from: Data(lines[1])) else { return nil }
        return (binding, Int64(lines[0].count + lines[1].count + 2))
    }

    /// Opens an existing journal; nil if there is none. A journal whose binding differs from
    /// `expected` is refused with an error that says what differs; one that differs only in its
    /// destination with a ``BlockStreamError/Kind/journalOfAnotherDestination`` error. A symbolic
    /// link at `path` is refused.
    static func open(path: String, expected: Binding) throws(BlockStreamError) -> TransferJournal? {
        let fd = Glibc.open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            if errno == ELOOP { throw symlinkRefusal(path) }
            throw BlockStreamError(.journal, "cannot open journal \(path): \(systemError())")
        }
        var opened = stat()
        guard fstat(fd, &opened) == 0, (opened.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            throw BlockStreamError(.journal, "journal \(path) is not a regular file")
        }
        guard let (binding, dataStart) = header(of: fd) else {
            close(fd)
            throw BlockStreamError(.journal, "journal \(path) is damaged or not a gnt-move journal")
        }
        if binding != expected && binding.sameTransfer(as: expected) {
            close(fd)
            var differences: [String] = []
            if binding.destination != expected.destination { differences.append("path \(binding.destination ?? "none") now \(expected.destination ?? "none")") }
            if binding.destination_device != expected.destination_device || binding.destination_inode != expected.destination_inode {
                differences.append("device/inode \(binding.destination_device.map(String.init) ?? "none")/\(binding.destination_inode.map(String.init) ?? "none") now \(expected.destination_device.map(String.init) ?? "none")/\(expected.destination_inode.map(String.init) ?? "none")")
            }
            throw BlockStreamError(.journalOfAnotherDestination, "journal \(path) was written for another destination (\(differences.joined(separator: "; ")))")
        }
        guard binding == expected else {
            close(fd)
            var differences: [String] = []
            if binding.magic != expected.magic { differences.append("magic") }
            if binding.local_certificate != expected.local_certificate || binding.peer_certificate != expected.peer_certificate { differences.append("certificates") }
            if binding.size != expected.size { differences.append("disk size") }
            if binding.chunk_size != expected.chunk_size || binding.role != expected.role { differences.append("format") }
            if binding.digest != expected.digest { differences.append("chunk digest") }
            throw BlockStreamError(.journal, "journal \(path) belongs to another transfer (\(differences.joined(separator: ", ")) differ); remove it to start over")
        }
        var info = stat()
        fstat(fd, &info)
        let records = max(0, (Int64(info.st_size) - dataStart) / Int64(recordSize))
        return TransferJournal(path: path, binding: binding, fd: fd, dataStart: dataStart, records: records)
    }

    /// Feeds the first `count` records to `body`, in order, in batches.
    func replay(_ count: Int64, _ body: ([UInt8]) -> Void) throws(BlockStreamError) {
        var done: Int64 = 0
        var buffer = [UInt8](repeating: 0, count: 4096 * Self.recordSize)
        while done < count {
            let batch = Int(min(count - done, 4096))
            let bytes = batch * Self.recordSize
            let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, bytes, off_t(dataStart + done * Int64(Self.recordSize))) }
            guard n == bytes else { throw BlockStreamError(.journal, "journal \(path) is shorter than it claims") }
            for i in 0..<batch { body(Array(buffer[(i * Self.recordSize)..<((i + 1) * Self.recordSize)])) }
            done += Int64(batch)
        }
    }

    /// Forgets every record after the first `count`.
    func truncate(to count: Int64) throws(BlockStreamError) {
        guard ftruncate(fd, off_t(dataStart + count * Int64(Self.recordSize))) == 0 else {
            throw BlockStreamError(.journal, "cannot truncate journal \(path): \(systemError())")
        }
        records = count
    }

    /// Appends records; with `durable`, fsyncs the journal before returning.
    func append(_ digests: [[UInt8]], durable: Bool) throws(BlockStreamError) {
        guard !digests.isEmpty else { return }
        let flat = digests.flatMap { $0 }
        let offset = dataStart + records * Int64(Self.recordSize)
        let n = flat.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(offset)) }
        guard n == flat.count else { throw BlockStreamError(.journal, "cannot write journal \(path): \(systemError())") }
        if durable { guard fsync(fd) == 0 else { throw BlockStreamError(.journal, "cannot sync journal \(path): \(systemError())") } }
        records += Int64(digests.count)
    }

    func remove() { unlink(path) }
}
