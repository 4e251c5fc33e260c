import Foundation
import OpenSSLSupport
#if canImport(Glibc)
import Glibc
#endif

/// The importer's front door. Anyone who reads a job log knows the published port, so every
/// incoming connection is authenticated on its own thread with a short handshake deadline: an
/// idle socket, a slow one or one that sends garbage cannot hold up the real exporter. The first
/// connection that authenticates is the stream; every other one is closed, and so is the port.
final class ImportAcceptor: @unchecked Sendable {
    /// Handshakes in progress at once; a connection beyond this is closed at once (the exporter
    /// retries).
    static let maxPendingHandshakes = 32

    private struct Pending {
        let socket: Int32
        let peer: String
        let deadline: Double
        var expired = false
    }

    private let listener: TCPListener
    private let context: TLSContext
    private let handshakeTimeout: Double
    private let reporter: StatusReporter
    private let condition = NSCondition()
    private var pending: [Int: Pending] = [:]
    private var nextID = 0
    private var running = 0
    private var winner: (connection: TLSConnection, peer: String)?
    private var closing = false
    private(set) var lastRejection: String?
    /// Written by a handshake thread when it ends, so that the accepting thread wakes up.
    private let wake: (read: Int32, write: Int32)

    init(listener: TCPListener, context: TLSContext, handshakeTimeout: Double, reporter: StatusReporter) throws(BlockStreamError) {
        self.listener = listener
        self.context = context
        self.handshakeTimeout = handshakeTimeout
        self.reporter = reporter
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else {
            throw BlockStreamError(.configuration, "cannot create a pipe: \(systemError())")
        }
        for fd in fds {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        wake = (fds[0], fds[1])
    }

    deinit {
        close(wake.read)
        close(wake.write)
    }

    /// Waits until `deadline` (monotonic seconds) for a connection that authenticates. Returns
    /// it and the peer's address, or nil at the deadline (``lastRejection`` says why the last
    /// refused attempt failed). Either way the port is closed and no handshake is left running.
    func accept(until deadline: Double) throws(BlockStreamError) -> (connection: TLSConnection, peer: String)? {
        defer { stop() }
        while true {
            let now = Monotonic.now()
            condition.lock()
            if let winner {
                condition.unlock()
                return winner
            }
            // Handshakes past their deadline are cut off: their thread sees the connection end.
            var nextExpiry = deadline
            for (id, entry) in pending {
                if entry.deadline <= now {
                    if !entry.expired {
                        pending[id]?.expired = true
                        shutdown(entry.socket, Int32(SHUT_RDWR))
                    }
                } else {
                    nextExpiry = min(nextExpiry, entry.deadline)
                }
            }
            let full = pending.count >= Self.maxPendingHandshakes
            condition.unlock()
            if now >= deadline { return nil }

            var pollers = [pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: listener.descriptor, events: Int16(POLLIN), revents: 0)]
            let milliseconds = Int32(min(max(nextExpiry - now, 0), 3600) * 1000) + 1
            let ready = poll(&pollers, nfds_t(pollers.count), milliseconds)
            if ready < 0 {
                if errno == EINTR { continue }
                throw BlockStreamError(.connect, "waiting for a connection failed: \(systemError())")
            }
            if pollers[0].revents != 0 { drainWake() }
            guard pollers[1].revents != 0, let (socket, peer) = try listener.acceptReady() else { continue }
            if full {
                let reason = "refused a connection from \(peer): \(Self.maxPendingHandshakes) handshakes are already in progress"
                reporter.log(reason)
                condition.lock()
                lastRejection = reason
                condition.unlock()
                close(socket)
                continue
            }
            start(socket: socket, peer: peer)
        }
    }

    private func start(socket: Int32, peer: String) {
        condition.lock()
        let id = nextID
        nextID += 1
        pending[id] = Pending(socket: socket, peer: peer, deadline: Monotonic.now() + handshakeTimeout)
        running += 1
        condition.unlock()
        let thread = Thread { [self] in
            authenticate(id: id, socket: socket, peer: peer)
            condition.lock()
            running -= 1
            condition.broadcast()
            condition.unlock()
            var byte: UInt8 = 1
            _ = write(wake.write, &byte, 1)
        }
        thread.name = "handshake"
        thread.stackSize = 1 << 20
        thread.start()
    }

    /// One connection's handshake, on its own thread. The descriptor stays registered (and may be
    /// shut down by the accepting thread) until the handshake ends; only then is it closed.
    private func authenticate(id: Int, socket: Int32, peer: String) {
        let connection: TLSConnection
        do {
            connection = try TLSConnection(context: context, socket: socket)
        } catch {
            // TLSConnection closed the socket itself.
            finishPending(id)
            record(rejection: error.message)
            return
        }
        do {
            try connection.handshake(timeout: handshakeTimeout, peerName: peer)
        } catch {
            let expired = finishPending(id)
            record(rejection: expired ? "TLS handshake with \(peer) failed: no handshake within \(ImportExportDaemon.formatSeconds(handshakeTimeout)) (an idle or too slow client)" : error.message)
            // A normal close, so that the TLS alert reaches the peer before the FIN.
            connection.closeSocket()
            return
        }
        condition.lock()
        pending[id] = nil
        let accepted = winner == nil && !closing
        if accepted { winner = (connection, peer) }
        condition.unlock()
        if !accepted {
            reporter.log("closed an authenticated connection from \(peer): the importer already has its stream")
            connection.abort()
        }
    }

    /// Unregisters a handshake; returns whether its deadline had cut it off.
    @discardableResult
    private func finishPending(_ id: Int) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        return pending.removeValue(forKey: id)?.expired ?? false
    }

    private func record(rejection: String) {
        condition.lock()
        lastRejection = rejection
        condition.unlock()
        reporter.log("rejected connection: \(rejection)")
    }

    private func drainWake() {
        var buffer = [UInt8](repeating: 0, count: 64)
        while read(wake.read, &buffer, buffer.count) > 0 {}
    }

    /// Closes the port, cuts off every handshake still in progress and waits for their threads.
    private func stop() {
        listener.close()
        condition.lock()
        closing = true
        for entry in pending.values { shutdown(entry.socket, Int32(SHUT_RDWR)) }
        while running > 0 { condition.wait() }
        condition.unlock()
    }
}
