import CFileExtents
import Foundation
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
    private var pacer = WritebackPacer()
    /// Size of a regular file when opened: zero ranges inside it must be punched, beyond it
    /// they can simply be skipped.
    public private(set) var initialSize: Int64 = 0
    /// Whether hole punching works here; cleared on the first EOPNOTSUPP.
    private var canPunch = true
    /// Guards the lazy creation of the file: the writer and the durability thread share the sink.
    private let openLock = NSLock()

    /// Opens `path` for writing; nil means stdout. `allotted` (bytes) is what the destination
    /// may receive at most (`--expected-size`); a block device's capacity bounds it as well.
    /// A symbolic link is refused (see ``SafePath``); a file that does not exist yet is created
    /// exclusively, with the first byte written.
    public init(path: String?, allotted: Int64? = nil) throws(BlockStreamError) {
        self.path = path
        guard let path else {
            descriptor = 1
            ownsDescriptor = false
            isBlockDevice = false
            var info = stat()
            fstat(1, &info)
            isRegularFile = (info.st_mode & S_IFMT) == S_IFREG
            allottedSize = nil
            return
        }
        ownsDescriptor = true
        var capacity: Int64?
        if let real = try SafePath.resolve(path, role: "destination", kind: .destination) {
            let fd = try SafePath.open(real, given: path, flags: O_WRONLY, role: "destination", kind: .destination)
            var info = stat()
            fstat(fd, &info)
            descriptor = fd
            isBlockDevice = (info.st_mode & S_IFMT) == S_IFBLK
            isRegularFile = (info.st_mode & S_IFMT) == S_IFREG
            initialSize = isRegularFile ? Int64(info.st_size) : 0
            if isBlockDevice {
                let bytes = gnt_block_device_size(fd)
                capacity = bytes >= 0 ? bytes : nil
            }
        } else {
            let parent = path.contains("/") ? String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) : "."
            guard access(parent.isEmpty ? "/" : parent, W_OK) == 0 else {
                throw BlockStreamError(.destination, "cannot create destination \(path): \(systemError())")
            }
            descriptor = -1
            isBlockDevice = false
            isRegularFile = true
        }
        if let capacity {
            allottedSize = min(allotted ?? capacity, capacity)
        } else {
            allottedSize = allotted
        }
    }

    deinit { if ownsDescriptor && descriptor >= 0 { close(descriptor) } }

    /// The most bytes this destination may receive: `--expected-size` and a device's capacity.
    /// Nothing is ever written at or beyond it. Nil for stdout (an OS script's stream may carry
    /// more than the disk) and when unknown.
    public let allottedSize: Int64?

    /// The open descriptor, creating the file on first use.
    public var fd: Int32 {
        get throws(BlockStreamError) {
            openLock.lock()
            defer { openLock.unlock() }
            if descriptor < 0, let path {
                let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                guard fd >= 0 else {
                    if errno == EEXIST {
                        throw BlockStreamError(.destination, "destination \(path) appeared after the importer started; refusing to write into a file it did not create")
                    }
                    throw BlockStreamError(.destination, "cannot create destination \(path): \(systemError())")
                }
                descriptor = fd
            }
            return descriptor
        }
    }

    /// Device and inode of the destination, once it is open (nil for stdout and before creation).
    public var identity: (device: UInt64, inode: UInt64)? {
        openLock.lock()
        defer { openLock.unlock() }
        guard path != nil, descriptor >= 0 else { return nil }
        return SafePath.identity(descriptor)
    }

    /// Refuses a write of `count` bytes at `position` that would reach beyond the allotted size
    /// (checked without overflow, whatever the values).
    func checkBounds(_ position: Int64, _ count: Int64) throws(BlockStreamError) {
        let (end, overflow) = position.addingReportingOverflow(count)
        guard position >= 0, count >= 0, !overflow else {
            throw BlockStreamError(.beyondDestination, "refusing to write \(count) bytes at byte \(position) of \(name): the range is not representable")
        }
        if let allottedSize, end > allottedSize {
            throw BlockStreamError(.beyondDestination, "the stream carries more than the \(allottedSize) bytes allotted to destination \(name) (it reaches byte \(end)); nothing beyond them was written")
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
        try checkBounds(bytesWritten, Int64(data.count))
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
        if isRegularFile || isBlockDevice { pacer.wrote(from: bytesWritten - Int64(data.count), upTo: bytesWritten, fd: fd) }
    }

    /// Writes all of `data` at `offset`.
    public func write(_ data: UnsafeRawBufferPointer, at position: Int64) throws(BlockStreamError) {
        try checkBounds(position, Int64(data.count))
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
        if isRegularFile || isBlockDevice { pacer.wrote(from: position, upTo: position + Int64(data.count), fd: fd) }
    }

    /// Makes [offset, offset+length) read as zeros: skipped beyond the current end of a file, punched as a
    /// hole inside it, and on a block device zeroed with BLKZEROOUT unless the target is known
    /// to be zero already.
    public func writeZeros(at offset: Int64, length: Int64, targetIsZero: Bool) throws(BlockStreamError) {
        guard length > 0 else { return }
        try checkBounds(offset, length)
        let fd = try self.fd
        if isRegularFile {
            // The file's size now, not when it was opened: a warm import's earlier pass or this
            // pass's earlier writes may have grown it.
            var info = stat()
            let size = fstat(fd, &info) == 0 ? max(initialSize, Int64(info.st_size)) : Int64.max
            let end = min(offset + length, size)
            guard end > offset else { return }
            if canPunch {
                if gnt_punch_hole(fd, offset, end - offset) == 0 { return }
                guard errno == EOPNOTSUPP else { throw failure(errno, at: offset) }
                canPunch = false
            }
            try writeZeroBuffers(at: offset, length: end - offset)
        } else if isBlockDevice {
            if targetIsZero { return }
            if gnt_block_zero_out(fd, UInt64(offset), UInt64(length)) == 0 { return }
            try writeZeroBuffers(at: offset, length: length)
        } else {
            try writeZeroBuffers(at: offset, length: length)
        }
    }

    private func writeZeroBuffers(at offset: Int64, length: Int64) throws(BlockStreamError) {
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        var done: Int64 = 0
        while done < length {
            let n = Int(min(Int64(zeros.count), length - done))
            if isRegularFile || isBlockDevice {
                try write(UnsafeRawBufferPointer(rebasing: zeros[0..<n]), at: offset + done)
            } else {
                try write(UnsafeRawBufferPointer(rebasing: zeros[0..<n]))
            }
            done += Int64(n)
        }
    }

    /// Grows a regular file to `size` (a sparse tail reads as zeros). Never shrinks: like
    /// Ganeti's `conv=notrunc`, a larger target keeps its tail.
    public func extend(to size: Int64) throws(BlockStreamError) {
        guard isRegularFile else { return }
        try checkBounds(0, size)
        let fd = try self.fd
        var info = stat()
        fstat(fd, &info)
        if Int64(info.st_size) < size, ftruncate(fd, off_t(size)) != 0 { throw failure(errno, at: size) }
    }

    /// Makes the data written so far durable (fdatasync), for the resume journal.
    public func syncData() throws(BlockStreamError) {
        guard isRegularFile || isBlockDevice else { return }
        openLock.lock()
        let opened = descriptor >= 0
        openLock.unlock()
        guard opened else { return }
        let fd = try self.fd
        guard fdatasync(fd) == 0 else { throw failure(errno, at: bytesWritten) }
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
