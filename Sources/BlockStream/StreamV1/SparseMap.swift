import CFileExtents
#if canImport(Glibc)
import Glibc
#endif

/// Where a source file has data, found with SEEK_DATA/SEEK_HOLE. Ranges the file system knows
/// to be holes are never read. (A block device reports everything as data; its zero chunks are
/// found by looking at them.)
struct SparseMap {
    private let fd: Int32
    private let size: Int64
    /// The next known data range at or after the last query, cached.
    private var dataStart: Int64 = 0
    private var dataEnd: Int64 = 0
    /// Where the last query started: [queriedFrom, dataStart) is a known hole.
    private var queriedFrom: Int64 = -1
    private var supported = true

    init(fd: Int32, size: Int64) {
        self.fd = fd
        self.size = size
    }

    /// True when [offset, offset+length) is entirely a hole.
    mutating func isHole(offset: Int64, length: Int64) -> Bool {
        guard supported else { return false }
        if offset >= dataStart && offset < dataEnd { return false }
        // Inside the hole the last query found: no system call.
        if queriedFrom >= 0, offset >= queriedFrom, offset + length <= dataStart { return true }
        queriedFrom = offset
        let next = gnt_seek_data(fd, offset)
        if next < 0 {
            if errno == ENXIO { dataStart = size; dataEnd = size; return true }
            supported = false
            queriedFrom = -1
            return false
        }
        let end = gnt_seek_hole(fd, next)
        dataStart = next
        dataEnd = end < 0 ? size : end
        return next >= offset + length
    }

    /// Where the hole that ``isHole(offset:length:)`` just reported ends: the next data, or the
    /// end of the file.
    var holeEnd: Int64 { dataStart }
}

/// True when every byte is zero; `memcmp` against itself shifted by one is vectorised by libc.
func isAllZero(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let base = bytes.baseAddress, bytes.count > 0 else { return true }
    guard base.load(as: UInt8.self) == 0 else { return false }
    return memcmp(base, base + 1, bytes.count - 1) == 0
}
