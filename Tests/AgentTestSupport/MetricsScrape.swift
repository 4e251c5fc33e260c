import Foundation
import TestSupport
import XCTest

/// One scrape of an agent's `GET /metrics` over HTTPS with curl, as Prometheus or an operator
/// does it, and the samples of its text, parsed strictly.
public struct MetricsScrape: Sendable {
    public let status: Int
    public let contentType: String
    public let body: String

    /// A sample line: `name{label="value",…} value`.
    public struct Sample: Sendable, Equatable {
        public let name: String
        public let labels: [String: String]
        public let value: Double
    }

    /// Why a line is not Prometheus' text exposition format.
    public struct Malformed: Error, CustomStringConvertible {
        public let line: String
        public let reason: String
        public var description: String { "\(reason): \(line)" }
    }

    /// Scrapes `agent` with `user` and `password` (the agent's generated one by default); no
    /// credentials at all with `user: nil`.
    public init(_ agent: AgentHarness, user: String? = "gnt-move", password: String? = nil) throws {
        let folder = TemporaryDirectory("scrape")
        let headers = folder.file("headers"), bodyFile = folder.file("body")
        var arguments = ["-sS", "-k", "-o", bodyFile, "-D", headers, "-w", "%{http_code}"]
        if let user { arguments += ["-u", "\(user):\(password ?? agent.password)"] }
        arguments.append("https://\(agent.bind):\(agent.port)/metrics")
        let result = try runProcess("/usr/bin/curl", arguments)
        XCTAssertEqual(result.status, 0, result.stderr)
        status = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        body = (try? String(contentsOfFile: bodyFile, encoding: .utf8)) ?? ""
        let headerText = (try? String(contentsOfFile: headers, encoding: .utf8)) ?? ""
        contentType = headerText.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-type:") }
            .map { String($0.dropFirst("content-type:".count)).trimmingCharacters(in: .whitespaces) } ?? ""
    }

    /// Every sample, each line checked: comments are `# HELP name text` or `# TYPE name type`,
    /// every other non-empty line `name{labels} value` with a name that starts with `gnt_move_`,
    /// labels `key="value"` (escaped as the format says) and a number.
    public func samples() throws -> [Sample] {
        try Self.parse(body)
    }

    public static func parse(_ text: String) throws -> [Sample] {
        var samples: [Sample] = []
        for raw in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = String(raw)
            if line.hasPrefix("#") {
                let parts = line.split(separator: " ", maxSplits: 3).map(String.init)
                guard parts.count >= 3, parts[0] == "#", ["HELP", "TYPE"].contains(parts[1]), isMetricName(parts[2]) else {
                    throw Malformed(line: line, reason: "a comment that is neither # HELP nor # TYPE")
                }
                if parts[1] == "TYPE", !(parts.count == 4 && ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3])) {
                    throw Malformed(line: line, reason: "an unknown metric type")
                }
                continue
            }
            samples.append(try sample(line))
        }
        return samples
    }

    static func isMetricName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, first.isASCII && first.properties.isAlphabetic || first == "_" || first == ":" else { return false }
        return name.unicodeScalars.allSatisfy { ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) || $0 == "_" || $0 == ":" }
    }

    static func sample(_ line: String) throws -> Sample {
        var rest = Substring(line)
        let nameEnd = rest.firstIndex { $0 == "{" || $0 == " " } ?? rest.endIndex
        let name = String(rest[..<nameEnd])
        guard isMetricName(name) else { throw Malformed(line: line, reason: "not a metric name") }
        guard name.hasPrefix("gnt_move_") else { throw Malformed(line: line, reason: "a name without the gnt_move_ prefix") }
        rest = rest[nameEnd...]
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while rest.first != "}" {
                guard let equals = rest.firstIndex(of: "=") else { throw Malformed(line: line, reason: "a label without '='") }
                let key = String(rest[..<equals])
                guard isMetricName(key), !key.contains(":") else { throw Malformed(line: line, reason: "not a label name '\(key)'") }
                rest = rest[rest.index(after: equals)...]
                guard rest.first == "\"" else { throw Malformed(line: line, reason: "an unquoted label value") }
                rest = rest.dropFirst()
                var value = ""
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\\" {
                        guard let escaped = rest.first else { break }
                        rest = rest.dropFirst()
                        switch escaped {
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        case "n": value.append("\n")
                        default: throw Malformed(line: line, reason: "an invalid escape in a label value")
                        }
                    } else if character == "\"" {
                        closed = true
                        break
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { throw Malformed(line: line, reason: "an unterminated label value") }
                guard labels.updateValue(value, forKey: key) == nil else { throw Malformed(line: line, reason: "a repeated label") }
                if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" { throw Malformed(line: line, reason: "labels not separated by ','") }
            }
            rest = rest.dropFirst()
        }
        guard rest.first == " " else { throw Malformed(line: line, reason: "no space before the value") }
        let fields = rest.dropFirst().split(separator: " ")
        guard (1...2).contains(fields.count), let value = Double(String(fields[0])) else { throw Malformed(line: line, reason: "not a number") }
        return Sample(name: name, labels: labels, value: value)
    }

    /// The value of the sample named `name` whose labels include `labels`; nil when none.
    public func value(_ name: String, _ labels: [String: String] = [:]) throws -> Double? {
        let matching = try samples().filter { sample in sample.name == name && labels.allSatisfy { key, value in sample.labels[key] == value } }
        return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
    }
}
