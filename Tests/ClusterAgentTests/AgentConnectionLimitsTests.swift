import AgentTestSupport
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// Slow and idle clients do not starve the agent's HTTPS server: handshakes that do not finish,
/// idle connections and bodies trickled after the answer are closed by the server after their
/// timeouts, and a cap on open connections holds. The agent runs with short timeouts, set through its environment.
final class AgentConnectionLimitsTests: XCTestCase {
    var folder: TemporaryDirectory!
    var agent: AgentHarness!
    var server: BackgroundProcess?

    /// Well apart, so each closing can be told from the other.
    static let handshakeTimeout = 3.0
    static let idleTimeout = 8.0
    static let unreadBodyTimeout = 3.0

    override func setUpWithError() throws {
        agent = try AgentHarness.alone("limits", cluster: "cluster-l")
        folder = agent.folder
    }

    override func tearDown() {
        server?.kill(SIGKILL)
        server?.wait()
        server = nil
    }

    func startAgent(maxConnections: Int) throws {
        let environment = ProcessInfo.processInfo.environment.merging([
            "GNT_MOVE_AGENT_HANDSHAKE_TIMEOUT": String(Self.handshakeTimeout),
            "GNT_MOVE_AGENT_IDLE_TIMEOUT": String(Self.idleTimeout),
            "GNT_MOVE_AGENT_UNREAD_BODY_TIMEOUT": String(Self.unreadBodyTimeout),
            "GNT_MOVE_AGENT_MAX_CONNECTIONS": String(maxConnections),
        ]) { $1 }
        let process = try BackgroundProcess(Repository.gntMove, ["agent", "serve", "--dir", agent.dir], environment: environment)
        server = process
        XCTAssertTrue(waitFor(timeout: 30) { process.stderr.contains("listening on") }, process.stderr)
    }

    /// `GET /2/info` over a fresh connection (the coordinator's client would reuse a pooled
    /// one); its duration in seconds.
    func timedInfo() async throws -> Double {
        let answer = try RawHTTPS(port: agent.port, caFile: agent.dir + "/rapi.crt").send([.init("GET", "/2/info")])
        let response = try XCTUnwrap(answer.first)
        XCTAssertEqual(response.status, 200, response.body)
        XCTAssertEqual(try JSONValue(parsing: response.body)["name"]?.stringValue, "cluster-l")
        return response.seconds
    }

    func testStalledHandshakesAndIdleConnectionsAreClosedWhileTheServerAnswers() async throws {
        try startAgent(maxConnections: 256)
        let opened = Date()
        // 50 connections that never say a word, and 5 that start a TLS handshake and stall.
        let idle = try (0..<50).map { _ in try RawTCPSocket(port: agent.port) }
        let stalled = try (0..<5).map { _ in try RawTCPSocket(port: agent.port) }
        for socket in stalled { try socket.send(RawTCPSocket.partialClientHello) }
        // A connection that completes its handshake and then sends nothing.
        let quiet = try BackgroundProcess("/usr/bin/openssl", ["s_client", "-quiet", "-connect", "127.0.0.1:\(agent.port)",
                                                               "-servername", "localhost", "-CAfile", agent.dir + "/rapi.crt",
                                                               "-verify_return_error"], stdinPipe: true)
        defer { quiet.kill(); quiet.wait() }

        // The server still answers at once.
        let seconds = try await timedInfo()
        XCTAssertLessThan(seconds, Self.handshakeTimeout - 0.5, "GET /2/info took \(seconds) s with 56 slow clients connected")
        // Nothing is closed before its time: the sockets are open a second before the deadline.
        let early = Self.handshakeTimeout - 1 - Date().timeIntervalSince(opened)
        if early > 0 {
            XCTAssertFalse(idle[0].closedByPeer(within: early), "closed before the handshake timeout")
            XCTAssertFalse(stalled[0].closedByPeer(within: 0.01), "closed before the handshake timeout")
        }
        XCTAssertTrue(quiet.process.isRunning, "the TLS connection was closed before its idle timeout: \(quiet.stderr)")

        // After the handshake timeout, and before the idle timeout, the server has closed all of them.
        for (index, socket) in (idle + stalled).enumerated() {
            let left = Self.handshakeTimeout + 3 - Date().timeIntervalSince(opened)
            XCTAssertTrue(socket.closedByPeer(within: max(left, 0.1)), "connection \(index) still open")
        }
        XCTAssertTrue(waitFor(timeout: Self.idleTimeout + 5) { !quiet.process.isRunning },
                      "an idle TLS connection was not closed: \(quiet.stderr)")
        let idleFor = Date().timeIntervalSince(opened)
        XCTAssertGreaterThan(idleFor, Self.idleTimeout - 1, "the idle TLS connection was closed too early")
        XCTAssertTrue(quiet.stderr.contains("verify return:1"), "the idle connection never completed its handshake: \(quiet.stderr)")

        let after = try await timedInfo()
        XCTAssertLessThan(after, 2)
    }

    /// A client that, once answered, keeps trickling a body the server did not need (here, to an
    /// open GET) does not hold its connection beyond the unread-body timeout, though each chunk
    /// would count as activity for the idle timeout.
    func testTricklingAnUnreadBodyDoesNotHoldTheConnection() async throws {
        signal(SIGPIPE, SIG_IGN)  // the server may close while the test writes to s_client
        try startAgent(maxConnections: 256)
        let client = try BackgroundProcess("/usr/bin/openssl", ["s_client", "-quiet", "-connect", "127.0.0.1:\(agent.port)",
                                                                "-servername", "localhost", "-CAfile", agent.dir + "/rapi.crt",
                                                                "-verify_return_error"], stdinPipe: true)
        defer { client.kill(); client.wait() }
        let started = Date()
        try client.writeStdin(Data("GET /2/info HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n".utf8))
        XCTAssertTrue(waitFor(timeout: 10) { client.stdout.contains("HTTP/1.1 200") }, "no answer: \(client.stdout) \(client.stderr)")
        // One small chunk every 300 ms: well within the idle timeout each time.
        while client.process.isRunning && Date().timeIntervalSince(started) < Self.idleTimeout + 4 {
            try? client.writeStdin(Data("1\r\nx\r\n".utf8))
            try await Task.sleep(nanoseconds: 300_000_000)
        }
        let held = Date().timeIntervalSince(started)
        XCTAssertFalse(client.process.isRunning, "the connection was held for \(held) s by a trickled body")
        XCTAssertLessThan(held, Self.unreadBodyTimeout + 3)
        XCTAssertGreaterThan(held, Self.unreadBodyTimeout - 1, "closed before the unread-body timeout")
    }

    /// With a cap of 20, 20 silent connections fill the server: the next request waits until the
    /// handshake timeout frees their places, then is answered.
    func testConnectionCapHoldsAndRecovers() async throws {
        try startAgent(maxConnections: 20)
        let first = try await timedInfo()
        XCTAssertLessThan(first, 2)
        // Let the server see the first connection close, so all 20 places are free again.
        try await Task.sleep(nanoseconds: 300_000_000)
        let opened = Date()
        let silent = try (0..<20).map { _ in try RawTCPSocket(port: agent.port) }
        try await Task.sleep(nanoseconds: 300_000_000)
        let seconds = try await timedInfo()
        XCTAssertGreaterThan(seconds, Self.handshakeTimeout - 1.2, "a 21st connection was served at once with a cap of 20")
        XCTAssertLessThan(Date().timeIntervalSince(opened), Self.handshakeTimeout + 5, "the request was not served after the places freed up")
        for socket in silent { XCTAssertTrue(socket.closedByPeer(within: 5)) }
    }
}
