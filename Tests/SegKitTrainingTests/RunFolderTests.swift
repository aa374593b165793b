import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

final class RunFolderTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws { root = try Oracle.temporaryDirectory() }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  func message(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return "no error"
  }

  func testNewRunCreatesTheFolderAndAppendsTheLog() throws {
    let url = root.appendingPathComponent("runs/first")
    let layout = RunLayout(url)
    let lines: [Substring]
    do {
      let run = try RunWriter(url)
      XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: url.path), [".lock"], "a writer writes no file but its lock")
      // While it lives, a second writer of the folder (resuming or not) is refused, naming the holder.
      let second = message { _ = try RunWriter(url, resume: true) }
      XCTAssertTrue(second.contains("run folder \(url.path) is in use by another training (process \(getpid()))"), second)
      let log = try LogFileSink(run.layout.logURL)
      try log.record(.message("step 1 loss 2.5"))
      try log.record(.message("step 2 loss 2.0"))
      try log.record(.scalars([("loss", 1)], step: 3))  // not a log line
      try run.writeConfig("seed: 3\n")
      XCTAssertEqual(try run.layout.storedConfig(), "seed: 3\n")
      lines = try String(contentsOf: run.layout.logURL, encoding: .utf8).split(separator: "\n")
      XCTAssertEqual(lines.count, 2)
      XCTAssertTrue(lines[0].hasSuffix(" step 1 loss 2.5"))
      XCTAssertEqual(run.layout.checkpoints().directory, url.appendingPathComponent("checkpoints"))
    }

    // Once it is gone, resuming keeps what was there and appends.
    let resumed = try RunWriter(url, resume: true)
    try LogFileSink(resumed.layout.logURL).record(.message("resumed"))
    let after = try String(contentsOf: layout.logURL, encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(after.count, 3)
    XCTAssertEqual(after[0], lines[0])
  }

  /// The layout reads without writing: a missing run, a folder with neither model.json
  /// nor config.yaml and a run without a manifest are errors naming the path, and
  /// nothing is created.
  func testLayoutReadsWithoutWriting() throws {
    let missing = root.appendingPathComponent("missing")
    XCTAssertTrue(message { _ = try RunLayout.existing(missing) }.contains("\(missing.path): no such folder"))
    XCTAssertFalse(FileManager.default.fileExists(atPath: missing.path))
    let bare = root.appendingPathComponent("bare")
    try FileManager.default.createDirectory(at: bare, withIntermediateDirectories: true)
    XCTAssertTrue(message { _ = try RunLayout.existing(bare) }.contains("not a run folder (no model.json or config.yaml)"))
    try Data("seed: 1\n".utf8).write(to: RunLayout(bare).configURL)
    let layout = try RunLayout.existing(bare)
    XCTAssertTrue(message { _ = try layout.manifest() }.contains("has no model.json"))
    XCTAssertNil(layout.latestCheckpoint())
    XCTAssertTrue(message { _ = try layout.latestCheckpointURL() }.contains("no readable checkpoint"))
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: bare.path), ["config.yaml"])

    let manifest = ModelManifest(
      model: "unet_resnet18", classes: 3, classNames: ["a", "b", "c"], colors: [[1, 2, 3], [4, 5, 6], [7, 8, 9]],
      outputStride: 16)
    try manifest.write(to: layout.manifestURL)
    XCTAssertEqual(try layout.manifest(), manifest)
    XCTAssertEqual(try layout.manifest().colormap().colors[1].0, 4)
    var strided = manifest
    strided.outputStride = 1 << 40
    try strided.write(to: layout.manifestURL)
    XCTAssertTrue(message { _ = try layout.manifest() }.contains("'outputStride' must be 8, 16 or 32"))
    try Data("{\"model\": 3}".utf8).write(to: layout.manifestURL)
    XCTAssertTrue(message { _ = try layout.manifest() }.contains("not a valid model manifest"))
    // The inference defaults ride in the manifest; bad ones are refused by name.
    var withDefaults = manifest
    withDefaults.inference = ModelManifest.InferenceDefaults(scales: [0.5, 1], flip: true, crop: [64, 96], dataset: "pascal_voc")
    try withDefaults.write(to: layout.manifestURL)
    XCTAssertEqual(try layout.manifest().inference, withDefaults.inference)
    withDefaults.inference?.crop = [64]
    try withDefaults.write(to: layout.manifestURL)
    XCTAssertTrue(message { _ = try layout.manifest() }.contains("'inference.crop' must be [height, width]"))
    withDefaults.inference = ModelManifest.InferenceDefaults(warpAt: "sideways")
    try withDefaults.write(to: layout.manifestURL)
    XCTAssertTrue(message { _ = try layout.manifest() }.contains("'inference.warpAt' must be flow or output"))
    withDefaults.inference = ModelManifest.InferenceDefaults(ignoreLabel: -1)
    try withDefaults.write(to: layout.manifestURL)
    XCTAssertTrue(message { _ = try layout.manifest() }.contains("'inference.ignoreLabel' must not be negative"))
    // A folder with a manifest and no config.yaml is a run (inference never needs the YAML).
    let manifestOnly = root.appendingPathComponent("manifest-only")
    try FileManager.default.createDirectory(at: manifestOnly, withIntermediateDirectories: true)
    try manifest.write(to: RunLayout(manifestOnly).manifestURL)
    XCTAssertEqual(try RunLayout.existing(manifestOnly).manifest(), manifest)
  }

  func testNonEmptyFolderIsRefusedUnlessResuming() throws {
    let url = root.appendingPathComponent("taken")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    let earlier = url.appendingPathComponent("train.log")
    try Data("earlier run\n".utf8).write(to: earlier)
    let text = message { _ = try RunWriter(url) }
    XCTAssertTrue(text.contains(url.path) && text.contains("not empty") && text.contains("train.log"), text)
    XCTAssertEqual(try String(contentsOf: earlier, encoding: .utf8), "earlier run\n")
    XCTAssertNoThrow(try RunWriter(url, resume: true))
  }

  func testUnwritableLocationsAreClearErrors() throws {
    // Under a regular file nothing can be created, even by root.
    let file = root.appendingPathComponent("plain-file")
    try Data("x".utf8).write(to: file)
    let inside = file.appendingPathComponent("run")
    let text = message { _ = try RunWriter(inside) }
    XCTAssertEqual(text, "cannot create the run folder \(inside.path): \(file.path) is a file, not a folder")
    let onFile = message { _ = try RunWriter(file, resume: true) }
    XCTAssertTrue(onFile.contains("\(file.path) is an existing file"), onFile)
    XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), "x")
  }
}
