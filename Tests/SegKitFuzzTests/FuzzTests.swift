import Foundation
import SegKitData
import SegKitFuzzTargets
import SegKitTensor
import SegKitTestSupport
import SegKitTraining
import XCTest

/// The parsers of untrusted files under a bounded, deterministic mutation run (the
/// CI's fuzzing smoke test; `scripts/fuzz.sh` runs libFuzzer for longer), and every
/// regression file under Regressions/<target>/ (inputs that once crashed a parser).
/// A crash here takes the whole test process down, which is the failure.
final class FuzzTests: XCTestCase {
  static let regressions = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Regressions")
  /// Seconds of mutations per target.
  static let secondsPerTarget = 5.0

  func testRegressionFilesAreRejectedWithoutACrash() throws {
    var replayed = 0
    for target in FuzzTarget.allCases {
      let folder = Self.regressions.appendingPathComponent(target.rawValue)
      let names = (try? FileManager.default.contentsOfDirectory(atPath: folder.path)) ?? []
      for name in names.sorted() {
        let data = try Data(contentsOf: folder.appendingPathComponent(name))
        XCTAssertFalse(target.run(data), "\(target.rawValue)/\(name) was accepted")
        replayed += 1
      }
    }
    XCTAssertGreaterThan(replayed, 0, "the regression files are in \(Self.regressions.path)")
  }

  func testMutatedFilesNeverCrashAParser() throws {
    try SlowTest.skipInFastTier()
    let seeds = try makeSeeds()
    var report: [String] = []
    for target in FuzzTarget.allCases {
      let targetSeeds = try XCTUnwrap(seeds[target], target.rawValue)
      for seed in targetSeeds { XCTAssertTrue(target.run(Data(seed)), "\(target.rawValue): a seed is not accepted") }
      var mutator = Mutator(seed: 7)
      let start = Date()
      var (cases, accepted) = (0, 0)
      while Date().timeIntervalSince(start) < Self.secondsPerTarget {
        let input = mutator.mutate(targetSeeds[cases % targetSeeds.count])
        if target.run(Data(input)) { accepted += 1 }
        cases += 1
      }
      report.append("\(target.rawValue): \(cases) cases, \(accepted) accepted")
    }
    FuzzTarget.cleanUp()
    print("mutation fuzzing: " + report.joined(separator: "; "))
  }

  /// The settings.json a flow cache writes when it is made.
  private func flowCacheSettings(in folder: URL) throws -> [UInt8] {
    let cache = folder.appendingPathComponent("FlowCache")
    _ = try FlowCache(folder: cache)
    return [UInt8](try Data(contentsOf: cache.appendingPathComponent("settings.json")))
  }

  /// Valid files of every format: the fuzzer's starting points.
  private func makeSeeds() throws -> [FuzzTarget: [[UInt8]]] {
    let folder = try Oracle.temporaryDirectory("segkit-fuzz-seeds")
    defer { try? FileManager.default.removeItem(at: folder) }
    func bytes(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: folder.appendingPathComponent(name))) }
    try Oracle.run("""
      import sys, collections, numpy as np, scipy.io, torch
      folder = sys.argv[1]
      seg = (np.arange(20).reshape(4, 5) % 7).astype(np.uint8)
      gt = {"Segmentation": seg, "CategoriesPresent": np.unique(seg), "Name": "x", "Cells": np.array([[1.5, 2]], dtype=object)}
      scipy.io.savemat(f"{folder}/z.mat", {"GTcls": gt}, do_compression=True)
      scipy.io.savemat(f"{folder}/plain.mat", {"GTcls": gt}, do_compression=False)
      state = collections.OrderedDict([("w", torch.arange(6.).view(2, 3)), ("b", torch.tensor([1, 2], dtype=torch.int64))])
      torch.save(state, f"{folder}/zip.pth")
      torch.save(state, f"{folder}/legacy.pth", _use_new_zipfile_serialization=False)
      """, arguments: [folder.path])
    try StateDict([("w", try Tensor([1, 2, 3, 4], shape: [2, 2])), ("h", try Tensor.ones([3]).to(.float16))])
      .save(to: folder.appendingPathComponent("w.safetensors"))
    try FlowFile.write(try FlowField(width: 3, height: 2, values: (0..<12).map { Float($0) / 4 }), to: folder.appendingPathComponent("f.flo"))
    try DecisionSamples(features: try Tensor.ones([3, 4, 2, 4]), scores: try Tensor([90, 95, 99], shape: [3]),
                        distances: try Tensor([1, 2, 3], shape: [3])).write(to: folder.appendingPathComponent("d.safetensors"))
    let image = try Image(width: 6, height: 4, channels: 3, pixels: (0..<72).map { UInt8($0 * 3) })
    try ImageIO.writePNG(image, to: folder.appendingPathComponent("i.png"))
    try ImageIO.writeJPEG(image, to: folder.appendingPathComponent("i.jpg"))
    let config = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../configs/maskrnn-tfvos.yaml")
    return [
      .mat: [try bytes("z.mat"), try bytes("plain.mat")], .pth: [try bytes("zip.pth"), try bytes("legacy.pth")],
      .safetensors: [try bytes("w.safetensors")], .flo: [try bytes("f.flo")], .png: [try bytes("i.png")],
      .jpeg: [try bytes("i.jpg")], .ppm: [[UInt8](try PortablePixmap.encode(image)), [UInt8]("P5 2 1 15\n".utf8) + [15, 5]], .yaml: [[UInt8](try Data(contentsOf: config))],
      .flowcache: [try flowCacheSettings(in: folder)], .decisionsamples: [try bytes("d.safetensors")],
      .youtubevos: [[UInt8](#"{"videos": {"v1": {"objects": {"1": {"category": "cat", "frames": ["00000"]}}}}}"#.utf8)],
      .multipart: [[UInt8]("--fuzzboundary\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nstreet\r\n--fuzzboundary\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n\u{89}PNG\r\n--fuzzboundary--\r\n".utf8)],
      .rle: [[UInt8](#"{"object": 2, "rle": {"size": [4, 5], "counts": "5220003"}}"#.utf8)],
    ]
  }
}
