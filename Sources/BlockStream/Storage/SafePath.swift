#if canImport(Glibc)
import Glibc
#endif

/// How the daemons open the disks they are given: never through a symbolic link that someone
/// could have planted (a disk file swapped for a link to /etc/shadow or another instance's disk),
/// with one exception, the device links udev keeps under /dev (LVM's /dev/VG/LV, /dev/mapper/*,
/// /dev/disk/by-*): they are followed only when the link's folder is owned by root and writable
/// by root alone, and only to a block device.
enum SafePath {
    /// The path to open for `path`: itself when it is not a symbolic link, the block device a
    /// trusted device link points to, or an error that names the refusal. `role` is
    /// "destination" or "source"; `kind` the error kind to throw. ENOENT yields nil.
    static func resolve(_ path: String, role: String, kind: BlockStreamError.Kind) throws(BlockStreamError) -> String? {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw BlockStreamError(kind, "cannot open \(role) \(path): \(systemError())")
        }
        guard (info.st_mode & S_IFMT) == S_IFLNK else { return path }
        guard let device = trustedDeviceLink(path) else { throw symlinkRefusal(path, role: role, kind: kind) }
        return device
    }

    static func symlinkRefusal(_ path: String, role: String, kind: BlockStreamError.Kind) -> BlockStreamError {
        BlockStreamError(kind, "\(role) \(path) is a symbolic link; refusing to follow it (give the real path of the disk)")
    }

    /// The block device a udev-style link under /dev points to, or nil.
    static func trustedDeviceLink(_ path: String) -> String? {
        guard path.hasPrefix("/dev/"), let slash = path.lastIndex(of: "/") else { return nil }
        var folder = stat()
        guard lstat(String(path[..<slash]), &folder) == 0, (folder.st_mode & S_IFMT) == S_IFDIR,
              folder.st_uid == 0, folder.st_mode & 0o022 == 0 else { return nil }
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        let target = String(cString: resolved)
        var info = stat()
        guard target.hasPrefix("/dev/"), lstat(target, &info) == 0, (info.st_mode & S_IFMT) == S_IFBLK else { return nil }
        return target
    }

    /// Opens `path` (already resolved) with O_NOFOLLOW; a link that appeared meanwhile is refused.
    static func open(_ path: String, given: String, flags: Int32, mode: mode_t = 0, role: String,
                     kind: BlockStreamError.Kind) throws(BlockStreamError) -> Int32 {
        let fd = Glibc.open(path, flags | O_NOFOLLOW | O_CLOEXEC, mode)
        guard fd >= 0 else {
            if errno == ELOOP { throw symlinkRefusal(given, role: role, kind: kind) }
            throw BlockStreamError(kind, "cannot open \(role) \(given): \(systemError())")
        }
        return fd
    }

    /// Device and inode of an open descriptor.
    static func identity(_ fd: Int32) -> (device: UInt64, inode: UInt64)? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }
}
