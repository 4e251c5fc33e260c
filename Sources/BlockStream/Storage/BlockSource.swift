import CFileExtents
#if canImport(Glibc)
import Glibc
#endif

/// What an exporter reads: a regular or sparse file, a block device, or stdin.
public final class BlockSource: @unchecked Sendable {
    public let path: String?
    public let fd: Int32
    /// Size in bytes when known (files and block devices).
    public let size: Int64?
    public let isBlockDevice: Bool
    private let ownsDescriptor: Bool

    /// Opens `path` for reading; nil means stdin.
    public init(path: String?) throws(BlockStreamError) {
        self.path = path
        guard let path else {
            fd = 0
            ownsDescriptor = false
            isBlockDevice = false
            size = nil
            return
        }
        // A symbolic link is refused (see SafePath), so that a planted link cannot make the
        // exporter send another file or disk.
        guard let real = try SafePath.resolve(path, role: "source", kind: .source) else {
            throw BlockStreamError(.source, "cannot open source \(path): \(systemError(ENOENT))")
        }
        let fd = try SafePath.open(real, given: path, flags: O_RDONLY, role: "source", kind: .source)
        var info = stat()
        fstat(fd, &info)
        self.fd = fd
        ownsDescriptor = true
        isBlockDevice = (info.st_mode & S_IFMT) == S_IFBLK
        if isBlockDevice {
            let bytes = gnt_block_device_size(fd)
            size = bytes >= 0 ? bytes : nil
        } else if (info.st_mode & S_IFMT) == S_IFREG {
            size = Int64(info.st_size)
        } else {
            size = nil
        }
        gnt_advise_sequential(fd)
    }

    deinit { if ownsDescriptor { close(fd) } }

    public var name: String { path ?? "stdin" }

    /// Fills `buffer` from the current position; returns fewer bytes only at the end.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(BlockStreamError) -> Int {
        var filled = 0
        while filled < buffer.count {
            let n = Glibc.read(fd, buffer.baseAddress! + filled, buffer.count - filled)
            if n < 0 {
                if errno == EINTR { continue }
                throw BlockStreamError(.source, "reading \(name) failed: \(systemError())")
            }
            if n == 0 { break }
            filled += n
        }
        return filled
    }

    /// Reads at `offset` without moving the file position.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(BlockStreamError) -> Int {
        var filled = 0
        while filled < buffer.count {
            let n = pread(fd, buffer.baseAddress! + filled, buffer.count - filled, off_t(offset) + off_t(filled))
            if n < 0 {
                if errno == EINTR { continue }
                throw BlockStreamError(.source, "reading \(name) at offset \(offset) failed: \(systemError())")
            }
            if n == 0 { break }
            filled += n
        }
        return filled
    }
}
