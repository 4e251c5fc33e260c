import AgentTestSupport
import ClusterAgent
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// The agent's API under hostile input: every write route, in every spelling, refused without
/// credentials (401) and for a read-only user (403) before any body is read; unclean paths
/// refused (400); bodies limited per route (413). Afterwards nothing on the agent has changed.
final class AgentAPIHostileInputTests: XCTestCase {
    var folder: TemporaryDirectory!
    var agent: AgentHarness!
    var raw: RawHTTPS!

    override func setUpWithError() throws {
        agent = try AgentHarness.startedWithOneInstance("hostile", cluster: "cluster-h")
        folder = agent.folder
        let users = agent.dir + "/users"
        let text = try String(contentsOfFile: users, encoding: .utf8)
        try (text + "reader {cleartext}secret read\n").write(toFile: users, atomically: true, encoding: .utf8)
        raw = RawHTTPS(port: agent.port, caFile: agent.dir + "/rapi.crt")
    }

    override func tearDown() {
        agent?.stop()
    }

    /// What must not change: instances, jobs (with their status) and the files of the agent.
    func snapshot() async throws -> [String] {
        let client = try agent.client()
        let instances = try await client.request(.GET, "/2/instances", query: ["bulk": "1"])
        let jobs = try await client.request(.GET, "/2/jobs")
        var statuses: [String] = []
        for job in jobs.arrayValue ?? [] {
            let status = try await client.job(job["id"]?.integerValue ?? -1)
            statuses.append("\(job["id"]?.integerValue ?? -1): \(status["status"]?.stringValue ?? "?")")
        }
        var files: [String] = []
        let enumerator = FileManager.default.enumerator(atPath: agent.dir)
        while let path = enumerator?.nextObject() as? String {
            if path.hasPrefix("state.sqlite") { continue }  // SQLite's own files; its content is checked above
            let attributes = try FileManager.default.attributesOfItem(atPath: agent.dir + "/" + path)
            files.append("\(path) \(attributes[.size] ?? 0)")
        }
        return [instances.serialized, jobs.serialized] + statuses + files.sorted()
    }

    /// Every write route of the agent (and one it does not have), as method, canonical path and body.
    static func writeRoutes(job: Int64) -> [(String, String, String?)] {
        let create = #"{"__version__": 1, "mode": "create", "name": "evil", "disk_template": "file", "disks": [{"size": 1}], "hypervisor": "kvm"}"#
        let export = #"{"mode": "remote", "destination": [], "x509_key_name": ["x", "y", "z"], "destination_x509_ca": "x"}"#
        return [
            ("POST", "/2/instances", create),
            ("PUT", "/2/instances/vm1/prepare-export?mode=remote", nil),
            ("PUT", "/2/instances/vm1/export", export),
            ("PUT", "/2/gnt-move/discard-key", #"{"x509_key_name": ["x", "y", "z"]}"#),
            ("PUT", "/2/instances/vm1/startup", nil),
            ("PUT", "/2/instances/vm1/shutdown", nil),
            ("DELETE", "/2/instances/vm1", nil),
            ("GET", "/2/jobs/\(job)/wait", #"{"fields": ["status"], "previous_job_info": null, "previous_log_serial": null}"#),
            ("HEAD", "/2/jobs/\(job)/wait", nil),
            ("DELETE", "/2/jobs/\(job)", nil),
            ("PUT", "/2/jobs/\(job)/cancel", nil),
            ("POST", "/2/instances/vm1/reboot", nil),
            ("PATCH", "/2/instances/vm1", #"{}"#),
            ("OPTIONS", "/2/instances", nil),
        ]
    }

    /// Spellings of a canonical path that must reach the same authorization decision.
    static func cleanSpellings(_ pathAndQuery: String) -> [String] {
        let (path, query) = split(pathAndQuery)
        let parts = path.split(separator: "/").map(String.init)
        func encodeLast(_ s: String) -> String {
            guard let last = s.last else { return s }
            return String(s.dropLast()) + String(format: "%%%02X", Int(last.asciiValue ?? 0x41))
        }
        return [
            path, path + "/", path.replacingOccurrences(of: "/", with: "//"), "//" + path + "//",
            "/" + parts.map(encodeLast).joined(separator: "/"),
            "/%32/" + parts.dropFirst().joined(separator: "/"),
            "/" + parts.map { encodeLast($0).lowercased() }.joined(separator: "/"),
            path.uppercased(), path.uppercased() + "/",
        ].map { $0 + query }
    }

    /// Spellings that have no canonical form: refused with a 400, whoever asks.
    static func uncleanSpellings(_ pathAndQuery: String) -> [String] {
        let (path, query) = split(pathAndQuery)
        let parts = path.split(separator: "/").map(String.init)
        let head = "/" + parts.dropLast().joined(separator: "/")
        let last = parts.last ?? ""
        return [
            head + "/./" + last, head + "/x/../" + last, head + "/" + last + "/..", head + "%2F" + last, head + "%2f" + last,
            head + "/" + last + "%00", head + "/" + last + "%zz", head + "/" + last + "%4", head + "/" + last + "%2541",
            head + "/" + last + "%FF", head + "/%2E%2E/" + last, head + "/" + last + "%3Fx", head + "/" + last + "%0A",
        ].map { $0 + query }
    }

    static func split(_ pathAndQuery: String) -> (String, String) {
        guard let mark = pathAndQuery.firstIndex(of: "?") else { return (pathAndQuery, "") }
        return (String(pathAndQuery[..<mark]), String(pathAndQuery[mark...]))
    }

    /// The canonical form itself: what each spelling becomes, and what has none.
    func testCanonicalPaths() throws {
        let same: [(String, String)] = [
            ("/", "/"), ("//", "/"), ("/2/info", "/2/info"), ("/2/info/", "/2/info"), ("//2///info//", "/2/info"),
            ("/%32/info", "/2/info"), ("/2/inf%6f", "/2/info"), ("/2/jobs/1/wai%74/", "/2/jobs/1/wait"),
            ("/2/instances/vm%2D1.example", "/2/instances/vm-1.example"), ("/2/instances/%C3%A9", "/2/instances/é"),
        ]
        for (raw, canonical) in same { XCTAssertEqual(try RAPIPath(raw: raw).description, canonical, raw) }
        for raw in ["", "2/info", "/2/./info", "/2/../info", "/2/info/..", "/%2e%2e/info", "/2/x%2Fy", "/2/x%2fy", "/2/x%00",
                    "/2/x%", "/2/x%4", "/2/x%zz", "/2/x%2541", "/2/x%FF", "/2/x%C0%80", "/2/x%3F", "/2/x%23", "/2/x%5C", "/2/x%0A",
                    "/2/x%7F", "/2/x#y", "/2/x\\y", "/2/x\ty", "*", "https://localhost/2/info"] {
            XCTAssertThrowsError(try RAPIPath(raw: raw), raw)
        }
        XCTAssertTrue(try RAPIPath(raw: "/2/jobs/1/WAIT/").isJobWait)
        XCTAssertFalse(try RAPIPath(raw: "/2/jobs/1").isJobWait)
    }

    func assertGanetiError(_ response: RawHTTPS.Response, _ code: Int, _ context: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(response.status, code, context, file: file, line: line)
        guard !response.body.isEmpty, response.status != 0 else { return }
        if context.hasPrefix("HEAD") { return }
        let parsed = try? JSONValue(parsing: response.body)
        XCTAssertEqual(parsed?["code"]?.integerValue, Int64(code), "\(context): \(response.body)", file: file, line: line)
        XCTAssertNotNil(parsed?["message"]?.stringValue, "\(context): \(response.body)", file: file, line: line)
        XCTAssertNotNil(parsed?["explain"]?.stringValue, "\(context): \(response.body)", file: file, line: line)
    }

    func testEveryWriteInEverySpellingIsRefusedAndNothingChanges() async throws {
        // A job to wait on and to try to cancel: a query, which an open GET may submit.
        let client = try agent.client()
        let job = try await client.request(.GET, "/2/instances/vm1/info").integerValue ?? -1
        _ = try await client.pollJob(job)
        let before = try await snapshot()

        var requests: [RawHTTPS.Request] = []
        var expected: [Int] = []
        for (method, path, body) in Self.writeRoutes(job: job) {
            for spelling in Self.cleanSpellings(path) {
                requests.append(.init(method, spelling, body: body.map { Array($0.utf8) }))
                expected.append(401)
                requests.append(.init(method, spelling, user: "reader", password: "secret", body: body.map { Array($0.utf8) }))
                expected.append(403)
                requests.append(.init(method, spelling, user: "reader", password: "wrong", body: body.map { Array($0.utf8) }))
                expected.append(401)
                requests.append(.init(method, spelling, user: "gnt-move", password: "wrong", body: body.map { Array($0.utf8) }))
                expected.append(401)
            }
            for spelling in Self.uncleanSpellings(path) {
                requests.append(.init(method, spelling, body: body.map { Array($0.utf8) }))
                expected.append(400)
                requests.append(.init(method, spelling, user: "reader", password: "secret", body: body.map { Array($0.utf8) }))
                expected.append(400)
            }
        }
        // Odd authorization headers are no credentials.
        for header in ["Authorization: Basic", "Authorization: Basic !!!!", "Authorization: Bearer x",
                       "Authorization: Basic " + Data("gnt-move".utf8).base64EncodedString(),
                       "Authorization: Basic " + Data("gnt-move:".utf8).base64EncodedString(),
                       "Authorization: Basic " + Data(":\(agent.password)".utf8).base64EncodedString()] {
            requests.append(.init("PUT", "/2/instances/vm1/shutdown", headers: [header]))
            expected.append(401)
        }
        let responses = try raw.send(requests)
        XCTAssertEqual(responses.count, requests.count)
        for (index, response) in responses.enumerated() {
            assertGanetiError(response, expected[index], requests[index].description)
        }
        XCTAssertGreaterThan(requests.count, 400)

        let after = try await snapshot()
        XCTAssertEqual(after, before, "a refused request changed the agent")
        XCTAssertEqual(agent.keyNames, [])
        XCTAssertTrue(after[0].contains(#""name":"vm1""#), after[0])
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: folder.file("vm1.img"))[.size] as? Int, 1 << 20)
    }

    /// Reads stay open in every spelling; the canonical path is what is routed; a writer's odd
    /// spelling of a wait still needs (and gets) its credentials.
    func testReadsAreOpenAndSpellingsRouteToTheSameHandler() async throws {
        let client = try agent.client()
        let job = try await client.request(.GET, "/2/instances/vm1/info").integerValue ?? -1
        _ = try await client.pollJob(job)
        var requests: [RawHTTPS.Request] = []
        for spelling in Self.cleanSpellings("/2/info").prefix(7) { requests.append(.init("GET", spelling)) }
        for spelling in Self.cleanSpellings("/2/instances/vm1").prefix(7) { requests.append(.init("GET", spelling, user: "reader", password: "secret")) }
        let waitBody = Array(#"{"fields": ["status"]}"#.utf8)
        for spelling in Self.cleanSpellings("/2/jobs/\(job)/wait").prefix(7) {
            requests.append(.init("GET", spelling, user: "gnt-move", password: agent.password, body: waitBody))
        }
        let responses = try raw.send(requests)
        for (index, response) in responses.enumerated() {
            XCTAssertEqual(response.status, 200, "\(requests[index]): \(response.body)")
        }
        XCTAssertEqual(try JSONValue(parsing: responses[0].body)["name"]?.stringValue, "cluster-h")
        XCTAssertEqual(try JSONValue(parsing: responses[7].body)["name"]?.stringValue, "vm1")
        XCTAssertEqual(try JSONValue(parsing: responses[14].body)["job_info"], .array([.string("success")]))
        // An unknown route is a Ganeti-style 404, a sent but wrong password on a read a 401.
        let more = try raw.send([.init("GET", "/2/nothing"), .init("GET", "/2/info", user: "reader", password: "wrong")])
        assertGanetiError(more[0], 404, "GET /2/nothing")
        assertGanetiError(more[1], 401, "GET /2/info with a wrong password")
    }

    /// A 10 MiB body without credentials is answered with a 401 at once, without being read:
    /// the request head and 1 KiB of a declared 10 MiB body get the answer. The same request
    /// from a writer, with a body the route accepts, is still waiting for its body.
    func testCredentialsAreCheckedBeforeTheBodyIsRead() throws {
        func partialRequest(authorization: String?, length: Int) throws -> BackgroundProcess {
            let process = try BackgroundProcess("/usr/bin/openssl", ["s_client", "-quiet", "-connect", "127.0.0.1:\(agent.port)",
                                                                     "-servername", "localhost", "-CAfile", agent.dir + "/rapi.crt",
                                                                     "-verify_return_error"], stdinPipe: true)
            var head = "POST /2/instances HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: \(length)\r\n"
            if let authorization { head += "Authorization: \(authorization)\r\n" }
            head += "\r\n"
            try process.writeStdin(Data(head.utf8) + Data(repeating: 0x20, count: 1024))
            return process
        }
        let anonymous = try partialRequest(authorization: nil, length: 10 << 20)
        defer { anonymous.kill(); anonymous.wait() }
        XCTAssertTrue(waitFor(timeout: 10) { anonymous.stdout.contains("HTTP/1.1 401") }, "no 401 before the body: \(anonymous.stdout) \(anonymous.stderr)")
        XCTAssertTrue(anonymous.stdout.contains(#""code":401"#), anonymous.stdout)

        let token = Data("gnt-move:\(agent.password)".utf8).base64EncodedString()
        let writer = try partialRequest(authorization: "Basic \(token)", length: 100 << 10)
        defer { writer.kill(); writer.wait() }
        XCTAssertFalse(waitFor(timeout: 2) { writer.stdout.contains("HTTP/1.1") }, "the writer's request was answered without its body: \(writer.stdout)")
        // A writer that declares more than the route's limit is refused on the declaration.
        let large = try partialRequest(authorization: "Basic \(token)", length: 10 << 20)
        defer { large.kill(); large.wait() }
        XCTAssertTrue(waitFor(timeout: 10) { large.stdout.contains("HTTP/1.1 413") }, "\(large.stdout) \(large.stderr)")

        // And a whole 10 MiB body sent by curl: a quick 401.
        let response = try raw.send([.init("POST", "/2/instances", body: Array(repeating: 0x20, count: 10 << 20))])[0]
        assertGanetiError(response, 401, "POST /2/instances with 10 MiB")
        XCTAssertLessThan(response.seconds, 5)
    }

    /// Bodies are limited per route; the refusal is a Ganeti-style 413, declared or chunked.
    func testBodiesAreLimitedPerRoute() async throws {
        let user = "gnt-move", password = agent.password
        func padded(_ json: String, to size: Int) -> [UInt8] {
            // Valid JSON up to its size: the padding is whitespace after the value.
            Array(json.utf8) + Array(repeating: 0x20, count: max(0, size - json.utf8.count))
        }
        let create = #"{"__version__": 1, "mode": "create", "name": "big", "disk_template": "file", "disks": [{"size": 1}], "hypervisor": "kvm"}"#
        let cases: [(String, String, [UInt8], Int)] = [
            ("POST", "/2/instances?dry-run=1", padded(create, to: (1 << 20) + 1), 413),
            ("PUT", "/2/instances/vm1/export", padded("{}", to: (1 << 20) + 1), 413),
            ("PUT", "/2/gnt-move/discard-key", padded("{}", to: (64 << 10) + 1), 413),
            ("GET", "/2/jobs/1/wait", padded("{}", to: (64 << 10) + 1), 413),
            ("POST", "/2/instances?dry-run=1", padded(create, to: 1 << 20), 200),
            ("PUT", "/2/gnt-move/discard-key", padded(#"{"x509_key_name": null}"#, to: 64 << 10), 400),
        ]
        var requests: [RawHTTPS.Request] = []
        for (method, path, body, _) in cases {
            requests.append(.init(method, path, user: user, password: password, body: body))
            requests.append(.init(method, path, user: user, password: password, body: body, headers: ["Transfer-Encoding: chunked"]))
        }
        let responses = try raw.send(requests)
        for (index, response) in responses.enumerated() {
            let status = cases[index / 2].3
            if status == 200 {
                XCTAssertEqual(response.status, 200, "\(requests[index]): \(response.body)")
            } else {
                assertGanetiError(response, status, "\(requests[index]) with \(requests[index].body?.count ?? 0) bytes")
            }
        }
        let instances = try await agent.client().request(.GET, "/2/instances")
        XCTAssertEqual(instances.arrayValue?.count, 1, "a dry run created nothing")
    }
}
