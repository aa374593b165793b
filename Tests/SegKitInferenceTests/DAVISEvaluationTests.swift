import Foundation
import SegKitInference
import SegKitTestSupport
import XCTest

/// Results folders scored as davis2017-evaluation does, on synthetic DAVIS data.
final class DAVISEvaluationTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws { root = try Oracle.temporaryDirectory("segkit-davis-eval") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  func dataset(_ layout: Synthetic.VideoLayout) throws -> VideoDataset {
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames) = (0, 3, 7)
    (options.width, options.height, options.layout, options.seed) = (48, 32, layout, 5)
    options.objects = layout == .davis2016 ? 1 : 3
    let data = root.appendingPathComponent(layout.rawValue)
    try Synthetic.writeVideo(to: data, options: options)
    return layout == .davis2016 ? try .davis2016(root: data, split: "val") : try .davis2017(root: data, split: "val")
  }

  /// The annotations themselves as results, optionally changed frame by frame.
  func results(_ dataset: VideoDataset, change: (String, Int, inout Image) -> Void = { _, _, _ in }) throws -> URL {
    let folder = root.appendingPathComponent("results-\(UUID().uuidString)")
    for sequence in dataset.sequences {
      try FileManager.default.createDirectory(at: folder.appendingPathComponent(sequence.name), withIntermediateDirectories: true)
      for (index, frame) in sequence.frames.enumerated() {
        let url = try XCTUnwrap(frame.label?.url)
        var labels = try ImageIO.readLabel(url)
        change(sequence.name, index, &labels)
        try ImageIO.writePNG(labels, to: folder.appendingPathComponent("\(sequence.name)/\(url.lastPathComponent)"), palette: .pascal)
      }
    }
    return folder
  }

  func message(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return "no error"
  }

  func testPerfectResultsScoreOneAndTheCSVsHaveTheReferenceColumns() throws {
    for layout in [Synthetic.VideoLayout.davis2017, .davis2016] {
      let data = try dataset(layout)
      let report = try DAVISEvaluation.run(results: try results(data), dataset: data)
      XCTAssertEqual(report.objects.count, layout == .davis2016 ? 3 : 9, "\(layout)")
      let global = Dictionary(uniqueKeysWithValues: report.global.map { ($0.name, $0.value) })
      XCTAssertEqual(global["J&F-Mean"], 1, "\(layout)")
      XCTAssertEqual(global["J-Recall"], 1, "\(layout)")
      XCTAssertEqual(global["F-Decay"], 0, "\(layout)")
      XCTAssertTrue(report.objects.allSatisfy { $0.scores.perFrameJ.count == 5 }, "first and last frames left out")
      let lines = report.perSequenceCSV.split(separator: "\n")
      XCTAssertEqual(lines.first, "Sequence,J-Mean,F-Mean")
      XCTAssertEqual(lines.count, report.objects.count + 1)
      XCTAssertEqual(lines[1], "\(data.sequences[0].name)_1,1.000,1.000")
      XCTAssertEqual(report.globalCSV, "J&F-Mean,J-Mean,J-Recall,J-Decay,F-Mean,F-Recall,F-Decay\n1.000,1.000,1.000,0.000,1.000,1.000,0.000\n")
    }
  }

  /// A lost object scores 0 where it is annotated; void in the annotations is
  /// background; every object weighs the same in the means.
  func testLostObjectVoidAndEqualWeights() throws {
    let data = try dataset(.davis2017)
    let target = data.sequences[1].name
    let lost = try results(data) { sequence, _, labels in
      guard sequence == target else { return }
      for i in labels.pixels.indices where labels.pixels[i] == 2 { labels.pixels[i] = 0 }
    }
    let report = try DAVISEvaluation.run(results: lost, dataset: data)
    for object in report.objects {
      let expected: Double = object.sequence == target && object.object == 2 ? 0 : 1
      // Frames where the object is hidden score 1 (both empty); the synthetic objects stay in view.
      XCTAssertEqual(object.scores.j.mean, expected, "\(object.sequence)_\(object.object)")
    }
    XCTAssertEqual(report.global[1].value, 8.0 / 9, accuracy: 1e-12)

    // A void pixel in an annotation counts as background: predicting background there is right.
    let first = try XCTUnwrap(data.sequences[0].frames[2].label?.url)
    var annotation = try ImageIO.readLabel(first)
    let background = try XCTUnwrap(annotation.pixels.firstIndex(of: 0))
    annotation.pixels[background] = 255
    try ImageIO.writePNG(annotation, to: first, palette: .pascal)
    let again = try DAVISEvaluation.run(results: try results(data) { _, _, labels in
      for i in labels.pixels.indices where labels.pixels[i] == 255 { labels.pixels[i] = 0 }
    }, dataset: data)
    XCTAssertEqual(again.global[0].value, 1)
  }

  func testBadResultsAreClearErrors() throws {
    let data = try dataset(.davis2017)
    let sequence = data.sequences[0].name
    let missing = try results(data)
    let frame = try XCTUnwrap(data.sequences[0].frames[3].label?.url.lastPathComponent)
    try FileManager.default.removeItem(at: missing.appendingPathComponent("\(sequence)/\(frame)"))
    XCTAssertTrue(message { _ = try DAVISEvaluation.run(results: missing, dataset: data) }
      .contains("\(sequence)/\(frame): missing prediction"))

    let extra = try results(data) { name, index, labels in if name == sequence && index == 4 { labels.pixels[0] = 7 } }
    XCTAssertTrue(message { _ = try DAVISEvaluation.run(results: extra, dataset: data) }
      .contains("object id 7, but \(sequence)'s first annotation has 3 objects"))

    let small = try results(data)
    try ImageIO.writePNG(Image(width: 10, height: 10, channels: 1), to: small.appendingPathComponent("\(sequence)/\(frame)"))
    XCTAssertTrue(message { _ = try DAVISEvaluation.run(results: small, dataset: data) }
      .contains("10×10, but the annotation is 48×32"))
  }

  /// Crafted against the definitions, on a 300-frame sequence (298 scored, past the
  /// official code's 8-bit frame index): a one-pixel object found in the first half
  /// and lost in the second (J and F 1 then 0, decay 1, not NaN); an object absent
  /// from frames 100–199 but predicted there (0 on those frames); an object absent
  /// from frames 50–59 and predicted absent (both empty: 1).
  func testCraftedCasesOnALongSequence() throws {
    let (width, height, frames) = (8, 6, 300)
    let data = root.appendingPathComponent("long"), results = root.appendingPathComponent("long-results")
    let name = "long"
    for folder in ["JPEGImages/480p/\(name)", "Annotations/480p/\(name)", "ImageSets/2017"] {
      try FileManager.default.createDirectory(at: data.appendingPathComponent(folder), withIntermediateDirectories: true)
    }
    try FileManager.default.createDirectory(at: results.appendingPathComponent(name), withIntermediateDirectories: true)
    try "\(name)\n".write(to: data.appendingPathComponent("ImageSets/2017/val.txt"), atomically: true, encoding: .utf8)
    for t in 0..<frames {
      var truth = Image(width: width, height: height, channels: 1), predicted = truth
      truth.pixels[2 * width + 1 + t % 5] = 1  // one pixel, moving
      if t < 150 { predicted.pixels[2 * width + 1 + t % 5] = 1 }
      for (y, x) in [(4, 5), (4, 6), (5, 5), (5, 6)] {
        if !(100..<200).contains(t) { truth.pixels[y * width + x] = 2 }
        predicted.pixels[y * width + x] = 2
      }
      if !(50..<60).contains(t) {
        truth.pixels[0 * width + 6] = 3
        predicted.pixels[0 * width + 6] = 3
      }
      let frame = String(format: "%05d", t)
      try ImageIO.writeJPEG(Image(width: width, height: height, channels: 3), to: data.appendingPathComponent("JPEGImages/480p/\(name)/\(frame).jpg"))
      try ImageIO.writePNG(truth, to: data.appendingPathComponent("Annotations/480p/\(name)/\(frame).png"), palette: .pascal)
      try ImageIO.writePNG(predicted, to: results.appendingPathComponent("\(name)/\(frame).png"), palette: .pascal)
    }
    let report = try DAVISEvaluation.run(results: results, dataset: try .davis2017(root: data, split: "val"))
    XCTAssertEqual(report.objects.map(\.object), [1, 2, 3])
    let (one, absent, hidden) = (report.objects[0].scores, report.objects[1].scores, report.objects[2].scores)
    XCTAssertEqual(one.perFrameJ.count, 298)
    // Scored frames 1…149 right, 150…298 lost; decay bins [0, 74] and [223, 297].
    for stats in [one.j, one.f] {
      XCTAssertEqual(stats.mean, 0.5, accuracy: 1e-12)
      XCTAssertEqual(stats.recall, 0.5, accuracy: 1e-12)
      XCTAssertEqual(stats.decay, 1, accuracy: 1e-12)
    }
    // Absent from 100 of the 298 scored frames, predicted there; the bins hold none of them.
    for stats in [absent.j, absent.f] {
      XCTAssertEqual(stats.mean, 198.0 / 298, accuracy: 1e-12)
      XCTAssertEqual(stats.decay, 0, accuracy: 1e-12)
    }
    XCTAssertEqual(hidden.j.mean, 1)
    XCTAssertEqual(hidden.f.mean, 1)
    XCTAssertEqual(report.global[0].value, ((0.5 + 198.0 / 298 + 1) / 3 + (0.5 + 198.0 / 298 + 1) / 3) / 2, accuracy: 1e-12)
    XCTAssertFalse(report.global.contains { $0.value.isNaN })
  }
}
