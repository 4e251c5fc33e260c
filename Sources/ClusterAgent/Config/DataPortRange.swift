import BlockStream

/// `dataPortRange` in `agent.json` (`agent init --data-ports LOW-HIGH`): the ports the import
/// daemons may listen on, for firewalls. Kept as the text the operator wrote; checked when the
/// agent loads its configuration, so a range that does not parse never reaches a daemon.
extension AgentConfig {
    /// The range the import daemons listen in; nil: a port the kernel picks.
    var dataPorts: PortRange? {
        get throws {
            guard let dataPortRange else { return nil }
            do {
                return try PortRange(parsing: dataPortRange)
            } catch {
                throw AgentError.configuration("agent.json: 'dataPortRange' is '\(dataPortRange)': \(error.reason)")
            }
        }
    }
}
