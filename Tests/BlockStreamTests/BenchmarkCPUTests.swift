@testable import BlockStream
import Foundation
import TestSupport
import XCTest

/// The CPU time the stream benchmark reports per side: read from bash's `times` for nbdcopy, from
/// `/proc/PID/stat` for nbdkit, and from each daemon's status file for gnt-move.
final class BenchmarkCPUTests: XCTestCase {
    func testBashTimesOutputGivesTheChildrensCPUTime() {
        XCTAssertEqual(StreamBenchmark.childCPUSeconds(fromTimesOutput: "0m0.001s 0m0.002s\n0m1.500s 1m0.250s\n") ?? 0, 61.75, accuracy: 1e-9)
        XCTAssertNil(StreamBenchmark.childCPUSeconds(fromTimesOutput: "nbdcopy: error\n"))
        XCTAssertNil(StreamBenchmark.childCPUSeconds(fromTimesOutput: ""))
    }

    func testTheCPUTimeOfARunningProcessGrowsWithItsWork() throws {
        let busy = Process()
        busy.executableURL = URL(fileURLWithPath: "/bin/bash")
        busy.arguments = ["-c", "i=0; while [ $i -lt 3000000 ]; do i=$((i+1)); done"]
        try busy.run()
        defer { busy.terminate() }
        usleep(300_000)
        let early = try XCTUnwrap(StreamBenchmark.cpuSeconds(ofRunning: busy.processIdentifier))
        Thread.sleep(forTimeInterval: 1.5)
        let later = try XCTUnwrap(StreamBenchmark.cpuSeconds(ofRunning: busy.processIdentifier))
        XCTAssertGreaterThan(later, early, "a busy loop uses CPU")
        XCTAssertNil(StreamBenchmark.cpuSeconds(ofRunning: -1))
    }

    func testADaemonReportsItsCPUTimeAtExit() throws {
        let harness = DaemonHarness("cpu")
        let source = harness.folder.file("source.img")
        try TestData.writeRandom(source, size: 8 << 20)
        let importer = try harness.startImporter(dest: harness.folder.file("dest.img"))
        XCTAssertEqual(try harness.runExporter(port: try harness.listenPort(), source: source).status, 0)
        XCTAssertEqual(importer.wait(), 0)
        for name in ["import.status", "export.status"] {
            XCTAssertGreaterThan(try XCTUnwrap(try harness.status(name).cpu_seconds, name), 0, name)
        }
    }
}
