import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Writing small secret files: created with their final mode from the start, never readable by
/// others in between, and either absent or complete.
public enum SecureFile {
    public struct WriteError: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Makes `path` exist with `mode` (0600 for a database holding job bodies) before a library
    /// opens it, and tightens the mode of an existing file. Its SQLite journals inherit the mode.
    public static func prepareRestricted(_ path: String, mode: mode_t = 0o600) throws(WriteError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else { throw WriteError(description: "\(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        guard fchmod(fd, mode) == 0 else { throw WriteError(description: "\(path): \(String(cString: strerror(errno)))") }
    }

    /// Writes `contents` to `path` with `mode`. Without `replace`, fails if `path` exists
    /// (O_EXCL). With `replace`, writes a temporary file beside it and renames it into place.
    public static func write(contents: [UInt8], to path: String, mode: mode_t, replace: Bool) throws(WriteError) {
        let target = replace ? path + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))" : path
        let fd = open(target, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard fd >= 0 else { throw WriteError(description: String(cString: strerror(errno))) }
        var offset = 0
        while offset < contents.count {
            let n = contents.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, contents.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                let reason = String(cString: strerror(errno))
                close(fd)
                unlink(target)
                throw WriteError(description: reason)
            }
            offset += n
        }
        let synced = fsync(fd) == 0
        close(fd)
        guard synced else {
            unlink(target)
            throw WriteError(description: "fsync failed")
        }
        if replace {
            guard rename(target, path) == 0 else {
                let reason = String(cString: strerror(errno))
                unlink(target)
                throw WriteError(description: reason)
            }
        }
    }
}
