import OpenSSLSupport

/// Frame-level reading and writing of gnt-move/1 control messages on one connection.
struct V1Connection {
    let connection: TLSConnection
    let wire: WireWriter

    init(_ connection: TLSConnection, limiter: BandwidthLimiter?, counter: StatusReporter? = nil) {
        self.connection = connection
        wire = WireWriter(connection: connection, limiter: limiter, counter: counter)
    }

    func send(_ header: V1FrameHeader, payload: [UInt8] = []) throws(TLSError) {
        var header = header
        header.payloadLength = UInt32(payload.count)
        try wire.send(header.encoded + payload)
    }

    func sendError(_ message: String) {
        try? send(V1FrameHeader(type: .error), payload: Array(message.utf8.prefix(4096)))
    }

    /// Reads one header, throwing a clear error at the end of the stream.
    func readHeader(expecting what: String) throws -> V1FrameHeader {
        var raw = [UInt8](repeating: 0, count: V1FrameHeader.size)
        let n = try raw.withUnsafeMutableBytes { try connection.readFully(into: $0) }
        guard n == V1FrameHeader.size else {
            throw BlockStreamError(.truncated, "gnt-move/1: the stream ended while waiting for \(what) (truncated frame)")
        }
        return try raw.withUnsafeBytes { try V1FrameHeader.decode($0) }
    }

    /// Reads a control message's payload (small; data payloads go straight into chunk buffers).
    func readPayload(_ header: V1FrameHeader) throws -> [UInt8] {
        guard header.payloadLength <= 65536 else {
            throw BlockStreamError(.protocolError, "gnt-move/1: control message of \(header.payloadLength) bytes is too large")
        }
        var payload = [UInt8](repeating: 0, count: Int(header.payloadLength))
        let n = try payload.withUnsafeMutableBytes { try connection.readFully(into: $0) }
        guard n == payload.count else { throw BlockStreamError(.truncated, "gnt-move/1: truncated frame") }
        return payload
    }

    /// Reads the peer's answer; an ERROR frame becomes an error carrying the peer's message.
    func readReply(expecting type: V1FrameType, what: String, peer: String) throws -> (V1FrameHeader, [UInt8]) {
        let header = try readHeader(expecting: what)
        let payload = try readPayload(header)
        if header.type == .error {
            throw BlockStreamError(.protocolError, "\(peer) refused the transfer: \(String(decoding: payload, as: UTF8.self))")
        }
        guard header.type == type else {
            throw BlockStreamError(.protocolError, "gnt-move/1: expected \(what), got frame type \(header.type.rawValue)")
        }
        return (header, payload)
    }
}
