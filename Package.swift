// swift-tools-version:5.10
// SegKit: image and video segmentation in Swift on libtorch.
//
// The engine is libtorch. By default the build uses the copy that
// scripts/setup-libtorch.sh installs in .deps/libtorch/torch; set LIBTORCH to
// any other libtorch folder (one holding include/ and lib/), e.g. a CUDA build,
// and SEGKIT_CUDA=1 to link its CUDA libraries.
import Foundation
import PackageDescription

let packageDir = Context.packageDirectory
let libtorch = Context.environment["LIBTORCH"] ?? "\(packageDir)/.deps/libtorch/torch"
let withCUDA = Context.environment["SEGKIT_CUDA"] == "1"
// The pip wheels keep libcudart/libcupti (and with CUDA, cuDNN and friends) in
// site-packages/nvidia/*/lib, beside the torch folder.
let nvidiaRoot = URL(fileURLWithPath: libtorch).deletingLastPathComponent().appendingPathComponent("nvidia").path
let nvidiaLibs = ((try? FileManager.default.contentsOfDirectory(atPath: nvidiaRoot)) ?? [])
  .flatMap { ["\(nvidiaRoot)/\($0)/lib"] }
  .filter { FileManager.default.fileExists(atPath: $0) }
let rpaths = (["\(libtorch)/lib"] + nvidiaLibs).flatMap { ["-Xlinker", "-rpath", "-Xlinker", $0] }
let cudaLink = withCUDA
  ? ["-Xlinker", "--no-as-needed", "-ltorch_cuda", "-lc10_cuda", "-Xlinker", "--as-needed"] : []

let package = Package(
  name: "SegKit",
  platforms: [.macOS(.v14)],
  products: [
    .executable(name: "segkit", targets: ["segkit"]),
    .library(name: "SegKitTensor", targets: ["SegKitTensor"]),
    .library(name: "SegKitNN", targets: ["SegKitNN"]),
    .library(name: "SegKitModels", targets: ["SegKitModels"]),
    .library(name: "SegKitData", targets: ["SegKitData"]),
    .library(name: "SegKitMetrics", targets: ["SegKitMetrics"]),
    .library(name: "SegKitInference", targets: ["SegKitInference"]),
    .library(name: "SegKitExport", targets: ["SegKitExport"]),
    .library(name: "SegKitTraining", targets: ["SegKitTraining"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
    .package(url: "https://github.com/jpsim/Yams", from: "5.0.0"),
    .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
    .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
    .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
  ],
  targets: [
    // Layer 0: the plain-C shim over libtorch. Only this target sees C++.
    .target(
      name: "CTorchShim",
      path: "Sources/CTorchShim",
      cxxSettings: [
        .unsafeFlags(["-I", "\(libtorch)/include", "-I", "\(libtorch)/include/torch/csrc/api/include", "-w"]),
      ],
      linkerSettings: [
        .unsafeFlags(["-L", "\(libtorch)/lib"] + rpaths + cudaLink),
        .linkedLibrary("torch_cpu"),
        .linkedLibrary("c10"),
      ]
    ),
    // Layer 1: Tensor, ops, autograd and weight files.
    .target(
      name: "SegKitTensor",
      dependencies: ["CTorchShim", .product(name: "ZIPFoundation", package: "ZIPFoundation")],
      path: "Sources/SegKitTensor"
    ),
    // Layer 2: modules, layers, losses, optimizers and learning-rate policies.
    .target(
      name: "SegKitNN",
      dependencies: ["SegKitTensor"],
      path: "Sources/SegKitNN"
    ),
    // Layer 3: encoders, decoders, the model zoo and the model families.
    .target(
      name: "SegKitModels",
      dependencies: ["SegKitNN"],
      path: "Sources/SegKitModels"
    ),
    // Image codecs (libpng, libjpeg-turbo) behind a plain C header: their
    // longjmp-based errors become status codes before reaching Swift.
    .target(
      name: "CImageCodecs",
      path: "Sources/CImageCodecs",
      linkerSettings: [.linkedLibrary("png16"), .linkedLibrary("jpeg"), .linkedLibrary("z")]
    ),
    // OpenCV's DIS optical flow behind a plain C header.
    .target(
      name: "COpticalFlow",
      path: "Sources/COpticalFlow",
      cxxSettings: [.unsafeFlags(["-I", "/usr/include/opencv4", "-w"])],
      linkerSettings: [
        .linkedLibrary("opencv_video"), .linkedLibrary("opencv_imgproc"), .linkedLibrary("opencv_core"),
      ]
    ),
    // Layer 3 (on Tensor only): images, videos, optical flow, datasets, augmentation, loading.
    .target(
      name: "SegKitData",
      dependencies: ["SegKitTensor", "CImageCodecs", "COpticalFlow"],
      path: "Sources/SegKitData"
    ),
    // Layer 3 (on Tensor only): metrics (confusion matrix, mIoU; DAVIS J, F, T).
    .target(
      name: "SegKitMetrics",
      dependencies: ["SegKitTensor"],
      path: "Sources/SegKitMetrics"
    ),
    // Layer 4: inference: model loading (run folders, manifests, weights), image and
    // sequence segmenters (OSVOS, MaskRNN, DVSNet), evaluation, result writers.
    .target(
      name: "SegKitInference",
      dependencies: ["SegKitModels", "SegKitData", "SegKitMetrics"],
      path: "Sources/SegKitInference"
    ),
    // Layer 5: export: ONNX models written from a recorded forward pass, with the
    // manifest as metadata (the ONNX messages are generated from onnx.proto by
    // swift-protobuf's generator).
    .target(
      name: "SegKitExport",
      dependencies: ["SegKitInference", .product(name: "SwiftProtobuf", package: "swift-protobuf")],
      path: "Sources/SegKitExport"
    ),
    // Layer 6: training: one loop for the segmentation and flow tasks, the tasks,
    // sinks (console, log, TensorBoard), run folders, configuration, one-shot
    // fine-tuning; the decision network's small epoch loop of its own.
    .target(
      name: "SegKitTraining",
      dependencies: ["SegKitInference", .product(name: "Yams", package: "Yams")],
      path: "Sources/SegKitTraining"
    ),
    // Layer 7: the service: `segkit serve`'s HTTP API (Hummingbird on SwiftNIO) and its
    // web page (HTML, CSS and plain JavaScript in Page/, served from the binary's bundle).
    .target(
      name: "SegKitService",
      dependencies: [
        "SegKitInference", .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "NIOCore", package: "swift-nio"), .product(name: "ZIPFoundation", package: "ZIPFoundation"),
      ],
      path: "Sources/SegKitService",
      resources: [.copy("Page")]
    ),
    // Layer 8: the command-line tool: it parses arguments, calls the libraries and prints.
    .executableTarget(
      name: "segkit",
      dependencies: [
        "SegKitTensor", "SegKitModels", "SegKitData", "SegKitMetrics", "SegKitInference", "SegKitTraining", "SegKitExport", "SegKitService",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      path: "Sources/segkit"
    ),
    // Benchmarks against PyTorch eager (Benchmarks/run.sh).
    .executableTarget(
      name: "segkit-bench",
      dependencies: ["SegKitTensor", "SegKitModels", "SegKitData", "SegKitInference", "SegKitTraining"],
      path: "Benchmarks/segkit-bench"
    ),
    // The parsers of untrusted files as fuzz targets, and their libFuzzer driver
    // (scripts/fuzz.sh builds it with -sanitize=fuzzer; plainly built it replays files).
    .target(
      name: "SegKitFuzzTargets",
      dependencies: ["SegKitTensor", "SegKitData", "SegKitTraining"],
      path: "Sources/SegKitFuzzTargets"
    ),
    .executableTarget(
      name: "segkit-fuzz",
      dependencies: ["SegKitFuzzTargets"],
      path: "Sources/segkit-fuzz"
    ),
    // Runs the Python oracle (PyTorch, torchvision) for the tests.
    .target(
      name: "SegKitTestSupport",
      dependencies: ["SegKitTensor"],
      path: "Sources/SegKitTestSupport"
    ),
    .testTarget(
      name: "SegKitTensorTests",
      dependencies: ["SegKitTensor", "SegKitTestSupport"],
      path: "Tests/SegKitTensorTests"
    ),
    .testTarget(
      name: "SegKitModelsTests",
      dependencies: ["SegKitModels", "SegKitNN", "SegKitTensor", "SegKitTestSupport"],
      path: "Tests/SegKitModelsTests"
    ),
    .testTarget(
      name: "SegKitDataTests",
      dependencies: ["SegKitData", "CImageCodecs", "COpticalFlow", "SegKitTestSupport"],
      path: "Tests/SegKitDataTests"
    ),
    .testTarget(
      name: "SegKitMetricsTests",
      dependencies: ["SegKitMetrics", "SegKitTestSupport"],
      path: "Tests/SegKitMetricsTests"
    ),
    .testTarget(
      name: "SegKitInferenceTests",
      dependencies: ["SegKitInference", "SegKitData", "SegKitTestSupport"],
      path: "Tests/SegKitInferenceTests"
    ),
    .testTarget(
      name: "SegKitTrainingTests",
      dependencies: ["SegKitTraining", "SegKitData", "SegKitInference", "SegKitTestSupport"],
      path: "Tests/SegKitTrainingTests"
    ),
    // The `segkit` command end to end: these tests run the executable they depend on.
    .testTarget(
      name: "SegKitCommandTests",
      dependencies: ["segkit", "SegKitTraining", "SegKitData", "SegKitInference", "SegKitModels", "SegKitTensor", "SegKitTestSupport"],
      path: "Tests/SegKitCommandTests"
    ),
    .testTarget(
      name: "SegKitFuzzTests",
      dependencies: ["SegKitFuzzTargets", "SegKitData", "SegKitTensor", "SegKitTraining", "SegKitTestSupport"],
      path: "Tests/SegKitFuzzTests",
      exclude: ["Regressions"]
    ),
    .testTarget(
      name: "SegKitExportTests",
      dependencies: ["SegKitExport", "SegKitInference", "SegKitModels", "SegKitNN", "SegKitTensor", "SegKitTestSupport"],
      path: "Tests/SegKitExportTests"
    ),
    // The service against a real server on a loopback port, and the page in headless Chromium.
    .testTarget(
      name: "SegKitServiceTests",
      dependencies: [
        "SegKitService", "SegKitInference", "SegKitData", "SegKitTestSupport",
        .product(name: "ZIPFoundation", package: "ZIPFoundation"),
      ],
      path: "Tests/SegKitServiceTests",
      exclude: ["Python"]
    ),
    .testTarget(
      name: "SegKitNNTests",
      dependencies: ["SegKitNN", "SegKitTestSupport"],
      path: "Tests/SegKitNNTests"
    ),
  ],
  cxxLanguageStandard: .cxx20
)
