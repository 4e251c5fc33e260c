import Foundation

/// Which instance holds a disk. A file or device is one instance's alone, whatever path names
/// it (a symlink, `..`, a hard link, a second device node): removing an instance removes its
/// disks, so two instances sharing one would let a removal destroy the other's data.
enum DiskOwnership {
    /// The identity of a file or device: the device's number for block devices, else the
    /// file's device and inode.
    struct Identity: Hashable {
        let device: UInt64
        let inode: UInt64
    }

    static func identity(_ path: String) -> Identity? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        if (info.st_mode & S_IFMT) == S_IFBLK { return Identity(device: UInt64(info.st_rdev), inode: 0) }
        return Identity(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    /// Refuses paths that an existing instance holds, or that name the same disk twice.
    static func checkUnowned(_ paths: [String], instances: [InstanceRecord]) throws {
        var held: [Identity: String] = [:]
        var heldPaths: [String: String] = [:]
        for record in instances {
            for path in record.diskPaths {
                heldPaths[canonical(path)] = record.name
                if let id = identity(path) { held[id] = record.name }
            }
        }
        var seen: Set<Identity> = []
        for path in paths {
            if let owner = heldPaths[canonical(path)] ?? identity(path).flatMap({ held[$0] }) {
                throw AgentError.exists("Disk \(path) already belongs to instance '\(owner)'; one disk cannot be adopted by two instances")
            }
            if let id = identity(path), !seen.insert(id).inserted {
                throw AgentError.wrongInput("Disk \(path) is given twice (the same file or device)")
            }
        }
    }

    static func canonical(_ path: String) -> String {
        guard let resolved = realpath(path, nil) else { return URL(fileURLWithPath: path).standardizedFileURL.path }
        defer { free(resolved) }
        return String(cString: resolved)
    }
}
