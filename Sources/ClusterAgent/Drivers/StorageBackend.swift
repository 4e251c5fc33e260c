import Foundation

/// Where instance disks live. `file`: sparse image files in the agent's disks folder.
/// `block`: LVM logical volumes made with the configured `lvcreate`/`lvremove` commands.
public protocol StorageBackend: Sendable {
    /// Where disk `index` of `instance` will be created (known before it is).
    func plannedPath(instance: String, index: Int) -> String
    /// Creates disk `index` of `instance`, `sizeMiB` large, at ``plannedPath(instance:index:)``;
    /// returns its path.
    func create(instance: String, index: Int, sizeMiB: Int64) async throws -> String
    func remove(path: String) async throws
    /// Bytes available for new disks; throws when they cannot be counted (the LVM command
    /// failed or timed out).
    func freeBytes() async throws -> Int64
}

public struct FileStorage: StorageBackend {
    let folder: String

    public init(folder: String) { self.folder = folder }

    public func plannedPath(instance: String, index: Int) -> String { "\(folder)/\(instance).disk\(index)" }

    /// Creates the image exclusively (never over an existing file, never through a symlink),
    /// mode 0600, sparse. `instance` was checked against Ganeti's host-name rule: no `/`, no `..`.
    public func create(instance: String, index: Int, sizeMiB: Int64) throws -> String {
        let path = plannedPath(instance: instance, index: index)
        guard !instance.contains("/"), !instance.hasPrefix(".") else { throw AgentError.wrongInput("instance name '\(instance)' cannot name a disk file") }
        let (bytes, overflow) = sizeMiB.multipliedReportingOverflow(by: 1 << 20)
        guard sizeMiB > 0, !overflow else { throw AgentError.wrongInput("disk \(index): \(sizeMiB) MiB is out of range") }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            if errno == EEXIST { throw AgentError.exists("disk file \(path) already exists") }
            throw AgentError.configuration("cannot create disk file \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        guard ftruncate(fd, off_t(bytes)) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path)
            throw AgentError.configuration("cannot size disk file \(path) to \(sizeMiB) MiB: \(reason)")
        }
        return path
    }

    public func remove(path: String) throws {
        guard path.hasPrefix(folder + "/") else { return }
        if FileManager.default.fileExists(atPath: path) { try FileManager.default.removeItem(atPath: path) }
    }

    public func freeBytes() -> Int64 {
        var info = statvfs()
        guard statvfs(folder, &info) == 0 else { return 0 }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }
}

public struct LVMStorage: StorageBackend {
    let volumeGroup: String
    let lvcreate: String
    let lvremove: String
    let vgFree: String
    /// Seconds each LVM command may take (``HostCommand``).
    let timeout: Double

    public init(volumeGroup: String, lvcreate: String, lvremove: String, vgFree: String, timeout: Double) {
        self.volumeGroup = volumeGroup
        self.lvcreate = lvcreate
        self.lvremove = lvremove
        self.vgFree = vgFree
        self.timeout = timeout
    }

    static func volumeName(instance: String, index: Int) -> String {
        "\(instance).disk\(index)".replacingOccurrences(of: "/", with: "_")
    }

    public func plannedPath(instance: String, index: Int) -> String { "/dev/\(volumeGroup)/\(Self.volumeName(instance: instance, index: index))" }

    public func create(instance: String, index: Int, sizeMiB: Int64) async throws -> String {
        try await HostCommand("\(lvcreate) -L \(sizeMiB)m -n %s \(volumeGroup)", timeout: timeout).run(Self.volumeName(instance: instance, index: index))
        return plannedPath(instance: instance, index: index)
    }

    public func remove(path: String) async throws {
        try await HostCommand("\(lvremove) -f %s", timeout: timeout).run(path)
    }

    public func freeBytes() async throws -> Int64 {
        let text = try await HostCommand(vgFree, timeout: timeout).run(volumeGroup).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Int64(text) else {
            throw AgentError.configuration("command '\(vgFree)' for \(volumeGroup) printed '\(text.suffix(300))', not a number of free bytes (vgFreeCommand in agent.json)")
        }
        return bytes
    }
}
