import CFileExtents
#if canImport(Glibc)
import Glibc
#endif

/// What an importer writes: a regular or sparse file, a block device, or stdout.
///
/// A file is opened without truncation, like Ganeti's `dd conv=notrunc`. A file that does not
/// exist yet is created only with the first byte written, so a transfer that fails before its
/// data arrives (authentication, magic) leaves no trace.
public final class BlockSink: @unchecked Sendable {
    public let path: String?
    private var descriptor: Int32
    public let isBlockDevice: Bool
    public let isRegularFile: Bool
    private let ownsDescriptor: Bool
    public private(set) var bytesWritten: Int64 = 0

    /// Opens `path` for writing; nil means stdout.
    public init(path: String?) throws(BlockStreamError) {
        self.path = path
        guard let path else {
            descriptor = 1
            ownsDescriptor = false
            isBlockDevice = false
            var info = stat()
            fstat(1, &info)
            isRegularFile = (info.st_mode & S_IFMT) == S_IFREG
            return
        }
        ownsDescriptor = true
        var info = stat()
        if stat(path, &info) == 0 {
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else { throw BlockStreamError(.destination, "cannot open destination \(path): \(systemError())") }
            descriptor = fd
            isBlockDevice = (info.st_mode & S_IFMT) == S_IFBLK
            isRegularFile = (info.st_mode & S_IFMT) == S_IFREG
        } else {
            let parent = path.contains("/") ? String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) : "."
            guard access(parent.isEmpty ? "/" : parent, W_OK) == 0 else {
                throw BlockStreamError(.destination, "cannot create destination \(path): \(systemError())")
            }
            descriptor = -1
            isBlockDevice = false
            isRegularFile = true
        }
    }

    deinit { if ownsDescriptor && descriptor >= 0 { close(descriptor) } }

    /// The open descriptor, creating the file on first use.
    public var fd: Int32 {
        get throws(BlockStreamError) {
            if descriptor < 0, let path {
                let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
                guard fd >= 0 else { throw BlockStreamError(.destination, "cannot create destination \(path): \(systemError())") }
                descriptor = fd
            }
            return descriptor
        }
    }

    public var name: String { path ?? "stdout" }

    /// Capacity of a block device, or nil.
    public var deviceSize: Int64? {
        guard isBlockDevice else { return nil }
        let size = gnt_block_device_size(descriptor)
        return size >= 0 ? size : nil
    }

    /// Appends all of `data` at the current position.
    public func write(_ data: UnsafeRawBufferPointer) throws(BlockStreamError) {
        let fd = try self.fd
        var offset = 0
        while offset < data.count {
            let n = Glibc.write(fd, data.baseAddress! + offset, data.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(errno, at: bytesWritten + Int64(offset))
            }
            offset += n
        }
        bytesWritten += Int64(data.count)
    }

    /// Writes all of `data` at `offset`.
    public func write(_ data: UnsafeRawBufferPointer, at position: Int64) throws(BlockStreamError) {
        let fd = try self.fd
        var offset = 0
        while offset < data.count {
            let n = pwrite(fd, data.baseAddress! + offset, data.count - offset, off_t(position) + off_t(offset))
            if n < 0 {
                if errno == EINTR { continue }
                throw failure(errno, at: position + Int64(offset))
            }
            offset += n
        }
        bytesWritten += Int64(data.count)
    }

    /// Makes everything written durable (files and devices; a pipe has nothing to flush).
    public func flush() throws(BlockStreamError) {
        guard isRegularFile || isBlockDevice else { return }
        let fd = try self.fd
        guard fsync(fd) == 0 else { throw failure(errno, at: bytesWritten) }
    }

    func failure(_ code: Int32, at offset: Int64) -> BlockStreamError {
        if code == ENOSPC || code == EDQUOT || code == EFBIG {
            return BlockStreamError(.destinationFull, "destination \(name) is full: \(systemError(code)) (at byte \(offset))")
        }
        return BlockStreamError(.destination, "writing \(name) at byte \(offset) failed: \(systemError(code))")
    }
}
