// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    // Dynamic exclusivity checks cost about 2% of the event path's CPU (perf, docs/performance.md);
    // the static checks still run.
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

/// What each service target (CLyman, CrazyIvan) builds on.
let serviceDependencies: [Target.Dependency] = [
    "AeselModel", "AeselWire", "AeselSealing", "AeselStream", "AeselStore", "AeselHTTP",
    .product(name: "NIOCore", package: "swift-nio"),
    .product(name: "NIOPosix", package: "swift-nio"),
    .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
    .product(name: "Hummingbird", package: "hummingbird"),
    .product(name: "Logging", package: "swift-log"),
    .product(name: "Metrics", package: "swift-metrics"),
    .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
]

let package = Package(
    name: "aesel",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "aesel", targets: ["aesel"]),
        .library(name: "AeselClient", targets: ["AeselClient"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-configuration", from: "1.4.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/vapor/jwt-kit", from: "5.8.0"),
    ],
    targets: [
        // Values only: objects, scenes, devices, transforms, events.
        .target(
            name: "AeselModel",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // Wire formats: UDP event codecs (JSON and binary) and the HTTP list envelopes.
        .target(
            name: "AeselWire",
            dependencies: ["AeselModel", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // OpenSSL's libcrypto, through Debian's libssl-dev: AES-256-GCM with a key schedule kept per key,
        // HKDF-SHA256 and AES-256-CBC.
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // Event security: sealed datagrams, per-device session ciphers and replay windows; the original's
        // AES-256-CBC compatibility mode.
        .target(
            name: "AeselSealing",
            dependencies: [
                "AeselModel", "CLibCrypto", .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The change stream between CLyman and CrazyIvan.
        .target(
            name: "AeselStream",
            dependencies: ["AeselModel", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOConcurrencyHelpers", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        // libzmq, through Debian's libzmq3-dev.
        .systemLibrary(name: "CZeroMQ", pkgConfig: "libzmq", providers: [.apt(["libzmq3-dev"])]),
        // The ZeroMQ change stream: PUB/SUB over inproc, ipc or tcp, the scene key as topic.
        .target(
            name: "AeselStreamZeroMQ",
            dependencies: [
                "AeselModel", "AeselWire", "AeselStream", "CZeroMQ",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // librdkafka, through Debian's librdkafka-dev (see docs/streams.md for the runtime library).
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        // The Kafka change stream: the scene key as message key, consumers in a group.
        .target(
            name: "AeselStreamKafka",
            dependencies: [
                "AeselModel", "AeselWire", "AeselStream", "CRdKafka",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The original's UDP framing between CLyman and CrazyIvan (`scene\njson`).
        .target(
            name: "AeselStreamUDP",
            dependencies: [
                "AeselModel", "AeselWire", "AeselStream",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Durable storage: the store protocol, its records and errors, and the in-memory store.
        .target(
            name: "AeselStore",
            dependencies: [
                "AeselModel", .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // What the SQL back ends share: each table's columns and row decoder, the statements both dialects
        // run, and one versioned migration list. A target of its own so that AeselStore's users (every
        // service, the in-memory store) never see SQL.
        .target(
            name: "AeselStoreSQL",
            dependencies: ["AeselModel", "AeselStore", .product(name: "CoreMetrics", package: "swift-metrics")],
            swiftSettings: swiftSettings
        ),
        // The embedded store: one SQLite file, through GRDB.
        .target(
            name: "AeselStoreSQLite",
            dependencies: [
                "AeselModel", "AeselStore", "AeselStoreSQL",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // The shared store: PostgreSQL, through postgres-nio.
        .target(
            name: "AeselStorePostgres",
            dependencies: [
                "AeselModel", "AeselStore", "AeselStoreSQL",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                // For `ConnectionPoolError`, which PostgresClient throws as it is when its pool is shut down or
                // cannot connect (the circuit breaker): the store tells those apart as unavailable.
                .product(name: "_ConnectionPoolModule", package: "postgres-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Who may call: bearer tokens (JWT, HS256), API keys kept as SHA-256 hashes, roles and scene grants,
        // the cluster secret, and protected mode. No HTTP in it, so the command line and the clients use it too.
        .target(
            name: "AeselAuth",
            dependencies: [
                "AeselModel",
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // HTTP plumbing shared by the services: envelope responses, error mapping, connection limits, /metrics.
        .target(
            name: "AeselHTTP",
            dependencies: [
                "AeselModel", "AeselWire", "AeselAuth",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: swiftSettings
        ),
        // The object service: UDP event ingest, write-behind persistence, object routes.
        .target(
            name: "CLyman",
            dependencies: serviceDependencies + ["CDatagramBatches"],
            swiftSettings: swiftSettings
        ),
        // sendmmsg(2) and recvmmsg(2), which Swift's Glibc module hides (they need _GNU_SOURCE).
        .target(name: "CDatagramBatches"),
        // The scene service: Scene-Device cache, UDP fan-out, scene and registration routes.
        .target(
            name: "CrazyIvan",
            dependencies: serviceDependencies + ["CDatagramBatches"],
            swiftSettings: swiftSettings
        ),
        // Adrestia, the gateway and cluster manager: discovery, health probes, the scene-to-pair mapping,
        // failover and forwarding. It reaches pairs only over HTTP and UDP, so it links neither half.
        .target(
            name: "Adrestia",
            dependencies: [
                "AeselModel", "AeselWire", "AeselSealing", "AeselStore", "AeselHTTP", "AeselAuth",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: swiftSettings
        ),
        // The composition root of the pair processes (`serve`, `pair`, `clyman`, `crazyivan`): the halves
        // joined by the chosen stream, the store chosen by location, and the ready line.
        .target(
            name: "AeselServer",
            dependencies: serviceDependencies + [
                "AeselAuth", "CLyman", "CrazyIvan", "Adrestia", "AeselStoreSQLite", "AeselStorePostgres",
                "AeselStreamZeroMQ", "AeselStreamKafka", "AeselStreamUDP",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: swiftSettings
        ),
        // Child processes on one machine: an `aesel` process on free loopback ports (`ServerProcess`), a
        // throwaway etcd and PostgreSQL, and `LocalCluster`, all of them together (`aesel cluster`). No
        // server target links it.
        .target(
            name: "AeselLocalCluster",
            dependencies: [
                "AeselModel", "AeselServer", "AeselHTTP", "AeselAuth",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // Test support: real servers, brokers and stores started on free ports, device sockets. Used by the
        // tests and by the benchmark harness; no server target links it.
        .target(
            name: "AeselTesting",
            dependencies: [
                "AeselModel", "AeselWire", "AeselSealing", "AeselStore", "AeselStoreSQLite", "AeselStorePostgres", "AeselServer", "AeselLocalCluster", "AeselHTTP", "AeselAuth",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The throwaway certificate authority of the TLS tests.
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // `aesel bench`: simulated devices, the baseline relay and the report. The top of the graph.
        .target(
            name: "AeselBench",
            dependencies: [
                "AeselModel", "AeselWire", "AeselSealing", "CLyman", "CrazyIvan", "AeselClient", "AeselServer", "AeselLocalCluster", "AeselTesting", "CDatagramBatches",
                "CZeroMQ", .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The device SDK: join a scene through the gateway, stream object updates over UDP, fail over.
        .target(
            name: "AeselClient",
            dependencies: [
                "AeselModel", "AeselWire", "AeselSealing",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "aesel",
            dependencies: [
                "AeselServer", "Adrestia", "AeselAuth", "AeselBench", "AeselClient", "AeselHTTP", "AeselLocalCluster", "AeselModel", "CrazyIvan",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The test pyramid: one target per module for what runs in-process, and the integration tests,
        // which start real processes, brokers and stores.
        .testTarget(name: "AeselModelTests", dependencies: ["AeselModel"], swiftSettings: swiftSettings),
        .testTarget(
            name: "AeselSealingTests",
            dependencies: [
                "AeselModel", "AeselSealing", .product(name: "Crypto", package: "swift-crypto"), .product(name: "CryptoExtras", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AeselAuthTests",
            dependencies: ["AeselAuth", "AeselModel", .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AeselWireTests",
            dependencies: ["AeselModel", "AeselWire", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AeselStoreTests",
            dependencies: [
                "AeselModel", "AeselStore", "AeselStoreSQL", "AeselStoreSQLite", "AeselStorePostgres", "AeselTesting",
                // The tests reach the rows without the store, to damage them or to lay out an older schema.
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CLymanTests",
            dependencies: [
                "AeselModel", "AeselWire", "AeselStore", "AeselStream", "CLyman", "AeselTesting",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CrazyIvanTests",
            dependencies: [
                "AeselModel", "AeselWire", "AeselStore", "CrazyIvan", "AeselTesting",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AdrestiaTests",
            dependencies: [
                "Adrestia", .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "AeselModel", "AeselWire", "AeselStore", "AeselStorePostgres", "AeselClient", "AeselLocalCluster", "AeselTesting", "AeselAuth",
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
