import MoveTrust

/// What a gnt-move agent's export job log says of each finished disk: `Disk N finished sending
/// data, W bytes on the wire, C bytes changed, digest …`.
public enum ExportJobLog {
    public enum Figure: String, Sendable {
        case wire = "bytes on the wire"
        case changed = "bytes changed"
    }

    /// `figure` summed over the finished disks of `job` (a `/2/jobs/ID` answer); 0 when absent.
    public static func total(_ figure: Figure, in job: JSONValue) -> Int64 {
        var total: Int64 = 0
        for entry in job["oplog"]?.arrayValue?.first?.arrayValue ?? [] {
            guard let parts = entry.arrayValue, parts.count >= 4, let message = parts[3].stringValue,
                  message.contains("finished sending data") else { continue }
            for part in message.components(separatedBy: ", ") where part.hasSuffix(" " + figure.rawValue) {
                total += Int64(part.split(separator: " ").first ?? "") ?? 0
            }
        }
        return total
    }
}
