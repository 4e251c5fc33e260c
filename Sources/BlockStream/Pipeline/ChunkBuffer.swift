/// A fixed-capacity byte buffer that travels between pipeline threads.
///
/// Exactly one stage owns a buffer at a time; ownership moves with it through a
/// ``BlockingQueue``, which is the synchronisation point. That hand-off is why the class is
/// `@unchecked Sendable`.
public final class ChunkBuffer: @unchecked Sendable {
    public let capacity: Int
    public let base: UnsafeMutableRawPointer
    /// Bytes in use, from `base`.
    public var count = 0
    /// Position of the chunk in its stream, for stages that reorder.
    public var sequence = 0
    /// gnt-move/1 framing: what the chunk is, where it belongs on the disk, how many disk bytes
    /// it stands for, and the chunk digest of those bytes.
    var kind: ChunkKind = .data
    public var diskOffset: Int64 = 0
    public var diskLength: Int64 = 0
    var digest: [UInt8] = []
    /// Bytes at the start of `base` reserved for a frame header.
    var headerRoom = 0
    /// The pool the buffer came from, so any stage can give it back.
    weak var home: BufferPool?

    /// Gives the buffer back to its pool.
    func release() { home?.give(self) }

    /// The payload after any reserved header room.
    var payload: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base + headerRoom, count: count - headerRoom) }

    public init(capacity: Int) {
        self.capacity = capacity
        base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 4096)
    }

    deinit { base.deallocate() }

    public var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: base, count: count) }
    public var free: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base + count, count: capacity - count) }
    public var isFull: Bool { count == capacity }

    public func append(_ data: UnsafeRawBufferPointer) {
        precondition(data.count <= capacity - count, "chunk overflow")
        if let source = data.baseAddress, data.count > 0 { (base + count).copyMemory(from: source, byteCount: data.count) }
        count += data.count
    }
}

/// A fixed set of reusable buffers. Taking blocks while all are in use, which is what bounds
/// a stream's memory whatever the disk size.
public final class BufferPool: @unchecked Sendable {
    private let free: BlockingQueue<ChunkBuffer>

    public init(buffers: Int, capacity: Int) {
        free = BlockingQueue(capacity: buffers)
        for _ in 0..<buffers { _ = free.push(ChunkBuffer(capacity: capacity)) }
    }

    /// A cleared buffer, or nil once the pool is closed.
    public func take() -> ChunkBuffer? {
        guard let buffer = free.pop() else { return nil }
        buffer.count = 0
        buffer.headerRoom = 0
        buffer.kind = .data
        buffer.digest = []
        buffer.home = self
        return buffer
    }

    public func give(_ buffer: ChunkBuffer) { _ = free.push(buffer) }

    /// Wakes every thread waiting for a buffer; they get nil.
    public func close() { free.close() }
}

/// What a chunk carries in gnt-move/1.
enum ChunkKind: Sendable {
    /// Bytes to write.
    case data
    /// `diskLength` zero bytes; no payload.
    case zero
    /// `diskLength` bytes the importer already holds (the digests match); no payload.
    case same
    /// The end of the stream.
    case end
}
