/// Checks the stream's leading `"M=" + magic` (docs/protocol.md §5.3) before anything is passed on: the
/// importer writes nothing to its destination until the whole prefix has arrived and matched.
struct MagicGate {
    private let expected: [UInt8]
    private var received: [UInt8] = []

    init(magic: String?) {
        expected = magic.map { Array(("M=" + $0).utf8) } ?? []
    }

    var isOpen: Bool { received.count == expected.count }

    /// Consumes prefix bytes from the front of `chunk` (moving the rest down) and checks them.
    mutating func admit(_ chunk: ChunkBuffer) throws(BlockStreamError) {
        guard !isOpen else { return }
        let take = min(expected.count - received.count, chunk.count)
        received.append(contentsOf: UnsafeRawBufferPointer(start: chunk.base, count: take))
        if received != Array(expected.prefix(received.count)) {
            throw BlockStreamError(.magic, "Magic value mismatch: the stream does not start with the expected magic (wrong peer, or different --compress on the two ends)")
        }
        if take > 0 {
            chunk.base.copyMemory(from: chunk.base + take, byteCount: chunk.count - take)
            chunk.count -= take
        }
    }

    /// At the end of the stream: the prefix must have been complete.
    func checkComplete() throws(BlockStreamError) {
        guard isOpen else {
            throw BlockStreamError(.magic, "Magic value mismatch: the stream ended after \(received.count) of \(expected.count) magic bytes")
        }
    }
}
