// swift-tools-version:6.1
// The libFuzzer targets of issue 9 ("hostile input in CI"). A package of its own, so that the ordinary
// `swift build --build-tests` of the repository never sees executables without a `main` (libFuzzer's
// runtime supplies it) and never has to build swift-nio with coverage instrumentation.
//
// AeselModel, AeselWire, AeselSealing and CLibCrypto are the repository's own, reached through the symlinks
// in Sources/: the fuzzers test the real code, without linking the server (Hummingbird, GRDB, PostgresNIO,
// ...). When one of them gains a dependency in ../Package.swift, add it here too.
//
// Build and run with ../scripts/fuzz.sh (it builds with `swift build --sanitize=fuzzer`).
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

/// A fuzzer: one executable whose only entry point is `LLVMFuzzerTestOneInput`.
func fuzzer(_ name: String, _ dependencies: [Target.Dependency] = []) -> Target {
    .executableTarget(
        name: name,
        dependencies: ["AeselModel", "AeselWire", "FuzzSupport", .product(name: "NIOCore", package: "swift-nio")] + dependencies,
        swiftSettings: swiftSettings + [.unsafeFlags(["-parse-as-library"])]
    )
}

let package = Package(
    name: "aesel-fuzz",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.3"),
    ],
    targets: [
        .target(name: "AeselModel", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: swiftSettings),
        .target(name: "AeselWire", dependencies: ["AeselModel", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: swiftSettings),
        .systemLibrary(name: "CLibCrypto", pkgConfig: "libcrypto"),
        .target(
            name: "AeselSealing", dependencies: ["AeselModel", "CLibCrypto", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: swiftSettings),
        .target(name: "FuzzSupport", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: swiftSettings),
        fuzzer("FuzzDatagram"),
        fuzzer("FuzzChangeEventCodec"),
        fuzzer("FuzzUDPStreamFraming"),
        fuzzer("FuzzHTTPBody"),
        fuzzer("FuzzSealedDatagram", ["AeselSealing"]),
    ]
)
