import Foundation

/// Makes received chunks durable and journals them, on its own thread, so that the writer never
/// waits for the disk to catch up: every interval it takes the digests of the chunks written so
/// far, fdatasyncs the destination (which covers them, since they were written before), and only
/// then appends them to the journal.
final class DurabilityKeeper: @unchecked Sendable {
    private let sink: BlockSink
    private let journal: JournalSlot?
    private let interval: Double
    private let condition = NSCondition()
    private var pending: [[UInt8]] = []
    private var stopping = false
    private var failure: (any Error)?
    private var thread: JoinableThread?

    init(sink: BlockSink, journal: JournalSlot?, interval: Double) {
        self.sink = sink
        self.journal = journal
        self.interval = interval
        thread = JoinableThread(name: "durability") { [self] in loop() }
    }

    /// The writer reports chunks it has written, in order.
    func written(_ digests: [[UInt8]]) {
        condition.lock()
        pending.append(contentsOf: digests)
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            let deadline = Date().addingTimeInterval(interval)
            while !stopping && Date() < deadline { _ = condition.wait(until: deadline) }
            let batch = pending
            pending.removeAll(keepingCapacity: true)
            let done = stopping
            condition.unlock()
            if !batch.isEmpty {
                do {
                    try sink.syncData()
                    try journal?.append(batch, durable: true)
                } catch {
                    condition.lock()
                    if failure == nil { failure = error }
                    condition.unlock()
                    return
                }
            }
            if done { return }
        }
    }

    /// Syncs and journals whatever is still pending, then stops. Throws the first sync failure.
    func finish() throws {
        condition.lock()
        stopping = true
        condition.broadcast()
        condition.unlock()
        thread?.join()
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw failure }
    }
}

/// The importer's journal: one resumed from, or one created with the first durable records,
/// when the destination exists and its device and inode can be bound into it.
final class JournalSlot: @unchecked Sendable {
    private var journal: TransferJournal?
    private let create: () throws -> TransferJournal

    init(existing: TransferJournal) {
        journal = existing
        create = { existing }
    }

    init(create: @escaping () throws -> TransferJournal) {
        self.create = create
    }

    func append(_ digests: [[UInt8]], durable: Bool) throws {
        let current = try journal ?? create()
        journal = current
        try current.append(digests, durable: durable)
    }
}
