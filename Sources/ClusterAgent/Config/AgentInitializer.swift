import BlockStream
import Foundation
import MoveTrust
import OpenSSLSupport

/// `gnt-move agent init`: lays out an agent's directory.
public enum AgentInitializer {
    public struct Options: Sendable {
        public var clusterName: String
        public var port = 5080
        public var bind = "0.0.0.0"
        /// The address the import daemons listen on and publish; nil: see `dataAddress(for:)`.
        public var dataAddress: String?
        public var nodeName = HostIdentity.fqdn()
        /// Copy this cluster domain secret instead of making a new one.
        public var secretFile: String?
        public var user: String?
        public var passwordFile: String?
        /// `fake` (demos and tests: no VM runs) or `command`; no default, so that a real host
        /// never silently gets the fake driver.
        public var hypervisorDriver: AgentConfig.HypervisorDriverKind
        public var startCommand: String?
        public var stopCommand: String?
        public var statusCommand: String?
        /// libvirt driver: connection URI, domain type, forced stop (see ``AgentConfig``).
        public var libvirtURI: String?
        public var libvirtDomainType: AgentConfig.LibvirtDomainType?
        public var forceStopAfter: Double?
        public var requireSignedSpec = false
        /// `--data-ports LOW-HIGH`: the ports the import daemons may listen on (nil: any).
        public var dataPortRange: String?
        /// The hypervisor the cluster's instances are reported under (Ganeti's name).
        public var hypervisor = AgentConfig.Hypervisor.kvm

        public init(clusterName: String, hypervisorDriver: AgentConfig.HypervisorDriverKind) {
            self.clusterName = clusterName
            self.hypervisorDriver = hypervisorDriver
        }
    }

    /// Creates the directory; refuses one that already holds an agent. Returns the password of
    /// the generated `gnt-move` user when no user was given (it is also in `DIR/password`).
    @discardableResult
    public static func initialize(paths: AgentPaths, options: Options) throws -> String? {
        let files = FileManager.default
        guard !files.fileExists(atPath: paths.config) else {
            throw AgentError.exists("\(paths.root) already holds an agent (\(paths.config))")
        }
        if options.hypervisorDriver == .command, options.startCommand == nil || options.stopCommand == nil || options.statusCommand == nil {
            throw AgentError.wrongInput("--hypervisor-driver command needs --start-command, --stop-command and --status-command (the status command exits 0 only while the instance runs)")
        }
        let dataAddress = try self.dataAddress(for: options)
        var dataPorts: PortRange?
        if let range = options.dataPortRange {
            do { dataPorts = try PortRange(parsing: range) } catch { throw AgentError.wrongInput("--data-ports: \(error)") }
        }
        // The whole configuration, checked as `serve` will check it, before anything is written.
        var config = AgentConfig(clusterName: options.clusterName, nodeName: options.nodeName, bindAddress: options.bind,
                                 port: options.port, dataAddress: dataAddress)
        config.osSearchPath = [paths.root + "/os"]
        config.hypervisorDriver = options.hypervisorDriver
        config.hypervisor = options.hypervisor
        (config.startCommand, config.stopCommand, config.statusCommand) = (options.startCommand, options.stopCommand, options.statusCommand)
        (config.libvirtURI, config.libvirtDomainType, config.forceStopAfter) = (options.libvirtURI, options.libvirtDomainType, options.forceStopAfter)
        if options.requireSignedSpec { config.requireSignedSpec = true }
        config.dataPortRange = dataPorts?.description
        try config.validate(path: "agent init")
        var secretText: String?
        if let source = options.secretFile {
            secretText = String(decoding: try ClusterDomainSecret.load(path: source).key, as: UTF8.self)
        }
        var password: String?
        var userLine: String
        if options.user != nil || options.passwordFile != nil {
            // --password-file alone sets the default user's password.
            guard let passwordFile = options.passwordFile else { throw AgentError.wrongInput("--user needs --password-file") }
            let pw = try OneLineFile.read(passwordFile, what: "password file")
            userLine = UsersFile.line(user: options.user ?? "gnt-move", password: pw, options: ["write"])
        } else {
            password = SecureRandom.hex(byteCount: 16)
            userLine = UsersFile.line(user: "gnt-move", password: password ?? "", options: ["write"])
        }
        // QEMU, started by libvirt as its own user, opens disk images by path: with the libvirt
        // driver the agent's folder and its disks folder can be traversed (not listed) by others.
        let traversable = options.hypervisorDriver == .libvirt ? [paths.root, paths.disks] : []
        for folder in [paths.root, paths.disks, paths.crypto, paths.importExport] {
            try files.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            if traversable.contains(folder) { chmod(folder, 0o711) }
        }
        try ClusterDomainSecret.write(to: paths.secret, text: secretText, force: false)
        try writeRAPICertificate(paths.rapiPEM, hostName: options.nodeName)
        try SecureFile.write(contents: Array(("# user password options\n" + userLine + "\n").utf8), to: paths.users, mode: 0o600, replace: false)
        if let password {
            try SecureFile.write(contents: Array((password + "\n").utf8), to: paths.root + "/password", mode: 0o400, replace: false)
        }
        _ = try AgentDatabase(path: paths.database)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try SecureFile.write(contents: Array(try encoder.encode(config)), to: paths.config, mode: 0o600, replace: false)
        return password
    }

    /// Where remote sources send disks: `--data-address` when given; else the bind address when it
    /// is one address; else (the agent binds every address) the node name's first address that
    /// is not loopback. A loopback address is never chosen for an agent that serves other hosts:
    /// its signed disk info would send a remote source to itself.
    public static func dataAddress(for options: Options) throws -> String {
        if let given = options.dataAddress { return given }
        guard NetworkNames.isWildcard(options.bind) else { return options.bind }
        let addresses = HostIdentity.addresses(of: options.nodeName)
        if let reachable = addresses.first(where: { !NetworkNames.isLoopback($0) }) { return reachable }
        let found = addresses.isEmpty ? "does not resolve" : "resolves only to \(addresses.joined(separator: ", ")) (loopback)"
        throw AgentError.wrongInput("--data-address is needed: the agent binds \(options.bind) and its node name \(options.nodeName) \(found), "
            + "so there is no address to publish that a remote source can reach")
    }

    /// A self-signed RSA-2048 certificate for the HTTPS API, valid 5 years as Ganeti's
    /// `rapi.pem`, key and certificate in one file, mode 0400.
    static func writeRAPICertificate(_ path: String, hostName: String) throws {
        let key = try PrivateKey.generateRSA(bits: 2048)
        let now = UnixTime.now()
        let certificate = try X509Certificate.selfSigned(key: key, commonName: hostName, subjectAltDNSNames: [hostName, "localhost"],
                                                         serial: now, notBefore: now - 60, notAfter: now + 5 * 365 * 86400)
        try SecureFile.write(contents: Array((try key.pemEncoded() + certificate.canonicalPEM()).utf8), to: path, mode: 0o400, replace: false)
        // The certificate alone, for RAPI clients (`--src-ca-file`/`--dest-ca-file`).
        try SecureFile.write(contents: Array(try certificate.canonicalPEM().utf8), to: AgentPaths.certificatePath(forPEM: path), mode: 0o644, replace: false)
    }
}
