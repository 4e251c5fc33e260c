// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "gnt-move",
    // Linux (Debian) only: the data plane uses Linux calls (SEEK_DATA, hole punching, ioctls).
    products: [
        .executable(name: "gnt-move", targets: ["gnt-move"]),
        .library(name: "MoveCoordinator", targets: ["MoveCoordinator"]),
        .library(name: "BlockStream", targets: ["BlockStream"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.0"),
        // Already in the graph through Hummingbird and AsyncHTTPClient; named because the
        // targets import their products directly.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        // Hypervisor, storage and OS commands: async, with timeouts and process-group teardown.
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        // The agent's `GET /metrics`: swift-metrics' API over a Prometheus registry per agent.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C system libraries. Each header holds only the static inline shims that C macros need.
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // libdeflate: whole-buffer gzip members, several times faster than zlib at level 1.
        .systemLibrary(name: "CDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        // Linux calls that Swift's Glibc module hides (it is built without _GNU_SOURCE).
        .target(name: "CFileExtents", cSettings: [.define("_GNU_SOURCE")]),
        // BLAKE3's official C code with its x86-64 assembly (see Sources/CBlake3/README.md): the
        // chunk checksums of gnt-move/1, several times faster than SHA-256 with SHA-NI.
        .target(name: "CBlake3", exclude: ["README.md", "LICENSE"], cSettings: [.define("BLAKE3_USE_NEON", to: "0")]),

        // The only Swift layer that touches OpenSSL: keys, certificates, HMAC, digests, TLS.
        .target(name: "OpenSSLSupport", dependencies: ["COpenSSL"]),
        // Ganeti's trust formats (secret, HMAC, signed certs, handshake, disk info, magic)
        // and gnt-move's signed instance specs. No network code.
        .target(name: "MoveTrust", dependencies: ["OpenSSLSupport"]),
        // The data plane: TLS transport, Ganeti v0 and gnt-move v1 streams, compression.
        .target(name: "BlockStream", dependencies: ["OpenSSLSupport", "CZstd", "CZlib", "CDeflate", "CFileExtents", "CBlake3",
                                                    .product(name: "Logging", package: "swift-log")]),
        // A cluster's side of a move: the RAPI subset over HTTPS, jobs and inventory in SQLite,
        // storage and hypervisor drivers, and supervision of the import/export daemons.
        .target(name: "ClusterAgent", dependencies: [
            "MoveTrust", "BlockStream", "OpenSSLSupport",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdCore", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOTLS", package: "swift-nio"),
            .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Subprocess", package: "swift-subprocess"),
            .product(name: "CoreMetrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // The third party: workflow, state, RAPI client. Re-exports the trust primitives.
        .target(name: "MoveCoordinator", dependencies: [
            "MoveTrust", "BlockStream",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "GRDB", package: "GRDB.swift"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // `gnt-move demo`: two local clusters on loopback and one real move.
        .target(name: "MoveDemo", dependencies: ["MoveCoordinator", "ClusterAgent", "BlockStream", "OpenSSLSupport"]),
        .executableTarget(name: "gnt-move", dependencies: [
            "MoveCoordinator", "MoveTrust", "OpenSSLSupport", "BlockStream", "ClusterAgent", "MoveDemo",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .target(name: "TestSupport", dependencies: ["OpenSSLSupport"], path: "Tests/TestSupport"),
        .testTarget(name: "MoveTrustTests", dependencies: ["MoveTrust", "OpenSSLSupport", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["gnt-move", "MoveTrust", "TestSupport"]),
        .testTarget(name: "BlockStreamTests", dependencies: ["BlockStream", "OpenSSLSupport", "TestSupport"]),
        .target(name: "AgentTestSupport", dependencies: ["MoveCoordinator", "TestSupport"], path: "Tests/AgentTestSupport"),
        .testTarget(name: "GanetiClusterTests", dependencies: ["MoveCoordinator", "TestSupport", "AgentTestSupport"]),
        .testTarget(name: "ClusterAgentTests", dependencies: ["ClusterAgent", "MoveCoordinator", "MoveTrust", "OpenSSLSupport", "TestSupport", "AgentTestSupport"]),
        .testTarget(name: "CoordinatorTests", dependencies: [
            "MoveCoordinator", "MoveTrust", "ClusterAgent", "BlockStream", "TestSupport", "AgentTestSupport",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTLS", package: "hummingbird"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "Logging", package: "swift-log"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
