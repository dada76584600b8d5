// swift-tools-version:6.1
import PackageDescription

// scripts/fuzz.sh sets SIDECAR_FUZZ: the sidecar's own modules then carry libFuzzer's coverage
// counters (its debug build reuses the dependencies `swift build` built; see the end of this file).
let fuzzing = Context.environment["SIDECAR_FUZZ"] != nil
let fuzzInstrumentation: [SwiftSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer"])] : []

// Release builds give each of the sidecar's functions a section of its own, so that the link can
// place the request path's hot functions side by side (`hotPathLayout`), and leave out the run-time
// exclusivity checks of the sidecar's own code (about 3% of the CPU per request; README: Measured
// figures). Debug builds, which every test and the SDK suite run, keep the checks and trap on an
// overlapping access; so do the fuzz builds, release or not.
let releaseFlags = ["-Xfrontend", "-function-sections"] + (fuzzing ? [] : ["-enforce-exclusivity=unchecked"])
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .unsafeFlags(releaseFlags, .when(configuration: .release)),
] + fuzzInstrumentation

// The functions a profile of the request path found hot (layout/hot-functions.txt, written by
// scripts/hot-functions.sh), placed together by lld in the release link: fewer instruction cache
// and TLB misses, a few per cent less CPU per request (README: Measured figures). Names a build no
// longer has are skipped, so a stale list only loses the gain for what changed.
let hotPathLayout: [LinkerSetting] = [
    .unsafeFlags(
        [
            "-Xlinker", "--symbol-ordering-file=\(Context.packageDirectory)/layout/hot-functions.txt",
            "-Xlinker", "--no-warn-symbol-ordering",
        ],
        .when(configuration: .release)
    )
]

// jemalloc in place of glibc's malloc (Debian: libjemalloc-dev to build, libjemalloc2 to run):
// 2-3% less CPU per request and 5-7% more requests a second on the load benchmark, for 2 MB more
// memory (README: Measured figures). Linked as a shared library ahead of libc, so the whole process
// calls it, libc and the other libraries too (glibc's documented way to replace malloc); its static
// archive would not do: `-static-stdlib` hides every archive's symbols from the other libraries.
let jemalloc: [LinkerSetting] = [.linkedLibrary("jemalloc", .when(platforms: [.linux]))]

let package = Package(
    name: "llm-sidecar",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "llm-sidecar", targets: ["llm-sidecar"]),
        .library(name: "SidecarCore", targets: ["SidecarCore"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.29.0"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
    ],
    targets: [
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(
            name: "CHiredis",
            path: "Sources/CHiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .systemLibrary(
            name: "CLibCrypto",
            path: "Sources/CLibCrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        .target(
            name: "CSidecarKernels",
            path: "Sources/CSidecarKernels"
        ),
        // The floors, bottom up; an arrow only points down (the compiler enforces it):
        // llm-sidecar -> SidecarCore -> SidecarPolicy -> SidecarOpenAI, CLibCrypto, CSidecarKernels
        //                            -> SidecarHTTP, SidecarRedis -> CHiredis
        //                            -> SidecarEmbedding -> CSidecarKernels, COpenBLAS
        .target(
            name: "SidecarEmbedding",
            dependencies: [
                "COpenBLAS",
                "CSidecarKernels",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SidecarHTTP",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SidecarRedis",
            dependencies: [
                "CHiredis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SidecarOpenAI",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SidecarPolicy",
            dependencies: [
                "SidecarOpenAI", "CLibCrypto", "CSidecarKernels", .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "SidecarCore",
            dependencies: [
                "CSidecarKernels",
                "SidecarEmbedding",
                "SidecarHTTP",
                "SidecarOpenAI",
                "SidecarPolicy",
                "SidecarRedis",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "TOMLKit", package: "TOMLKit"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "llm-sidecar",
            dependencies: [
                "SidecarCore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings,
            // The Swift runtime and Foundation linked in (as `--static-swift-stdlib` does): one
            // self-contained binary, and about a quarter less CPU per request than against the
            // shared libraries (README: Measured figures). The modules here are compiled for the
            // shared Foundation, which names only itself to the linker; its static archive also
            // needs the four libraries after it. lld (shipped with the toolchain): gold warns about
            // the `mktemp` call inside the static Foundation.
            linkerSettings: [
                .unsafeFlags([
                    "-static-stdlib", "-use-ld=lld", "-lCoreFoundation", "-l_FoundationCShims", "-l_FoundationCollections",
                    "-l_FoundationICU",
                ])
            ] + jemalloc + hotPathLayout
        ),
        // The fuzz targets' invariant checks, shared by the libFuzzer driver (below) and the tests.
        .target(
            name: "SidecarFuzzing",
            dependencies: [
                "SidecarCore",
                "SidecarHTTP",
                "SidecarOpenAI",
                "SidecarPolicy",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "embed-bench",
            dependencies: ["SidecarCore", .product(name: "NIOCore", package: "swift-nio")],
            path: "Benchmarks/Embedding",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "cache-bench",
            dependencies: [
                "SidecarCore", "SidecarPolicy", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/Cache",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "route-bench",
            dependencies: ["SidecarPolicy", "SidecarEmbedding"],
            path: "Benchmarks/Routing",
            swiftSettings: strictSettings
        ),
        // One test target; its folders mirror Sources/<target>/<folder>.
        .testTarget(
            name: "SidecarTests",
            dependencies: [
                "SidecarCore",
                "SidecarEmbedding",
                "SidecarFuzzing",
                "SidecarHTTP",
                "SidecarOpenAI",
                "SidecarPolicy",
                "SidecarRedis",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSettings
        ),
    ]
)

// The libFuzzer driver, declared only for scripts/fuzz.sh (SIDECAR_FUZZ=1): normal builds and
// `swift test` never see it. It has its own `main` that calls `LLVMFuzzerRunDriver`, and links
// with lld (gold fails on libFuzzer's second `main`).
if fuzzing {
    package.targets += [
        .systemLibrary(name: "CFuzzerDriver", path: "Fuzz/CFuzzerDriver"),
        .executableTarget(
            name: "sidecar-fuzz",
            dependencies: ["CFuzzerDriver", "SidecarFuzzing"],
            path: "Fuzz/SidecarFuzz",
            swiftSettings: strictSettings,
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer", "-use-ld=lld"])]
        ),
    ]
}
