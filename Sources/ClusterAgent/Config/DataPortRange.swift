import BlockStream

/// `dataPortRange` in `agent.json` (`agent init --data-ports LOW-HIGH`): the ports the import
/// daemons may listen on, for firewalls. Kept as the text the operator wrote; checked when the
/// agent loads its configuration, so a range that does not parse never reaches a daemon.
extension AgentConfig {
    /// Why `text` is not a port range (worded to follow the key), or nil when it is one.
    static func portRangeProblem(_ text: String) -> String? {
        do {
            _ = try PortRange(parsing: text)
            return nil
        } catch {
            return "is '\(text)': \(error.reason)"
        }
    }

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
