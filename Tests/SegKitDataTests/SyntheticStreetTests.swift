import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

/// The street generator as a DVSNet benchmark needs it: every frame labelled, exact
/// flow between consecutive frames in `segkit flow`'s convention, and motion that
/// changes within a snippet (stop, go, turn), so a key's age alone does not say how
/// far its content moved.
final class SyntheticStreetTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws { root = try Oracle.temporaryDirectory("segkit-street") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  func testExactFlowIsTheMotionDrawn() throws {
    let (width, height) = (96, 48)
    let snippet = try Synthetic.streetSnippet(seed: 3, split: "val", index: 2, frames: 12, width: width, height: height)
    XCTAssertEqual(snippet.flows.count, 11)
    var moverPixels = 0
    for t in [0, 4, 10] {
      let flow = snippet.flows[t]
      let pixels = width * height
      let street = -(snippet.pan[t + 1] - snippet.pan[t])
      let moverSteps = snippet.moverCentres.map { $0[t + 1] - $0[t] }
      for i in 0..<pixels {
        let (u, v) = (Double(flow.values[i]), Double(flow.values[pixels + i]))
        XCTAssertEqual(v, 0, accuracy: 1e-4)
        if [24, 26].contains(snippet.labels[t].pixels[i]) {
          // A person's or car's pixel moves with one of the movers.
          XCTAssertTrue(moverSteps.contains { abs($0 - u) < 1e-4 }, "pixel \(i) of frame \(t): \(u) is no mover's step \(moverSteps)")
          moverPixels += 1
        } else {
          XCTAssertEqual(u, street, accuracy: 1e-4, "pixel \(i) of frame \(t) is street")
        }
      }
    }
    XCTAssertGreaterThan(moverPixels, 0)
  }

  /// frame t at x shows what frame t+1 shows at x + F(x): labels carried by the flow
  /// land on the same class wherever the flow is whole pixels away from a boundary.
  func testFlowConventionCarriesLabelsForward() throws {
    let (width, height) = (128, 64)
    let snippet = try Synthetic.streetSnippet(seed: 1, split: "train", index: 0, frames: 16, width: width, height: height)
    var agree = 0, total = 0, stayAgree = 0
    for t in 0..<15 {
      let flow = snippet.flows[t]
      for y in 0..<height {
        for x in 0..<width {
          let i = y * width + x
          let target = Int((Double(x) + Double(flow.values[i])).rounded())
          guard (0..<width).contains(target) else { continue }
          total += 1
          if snippet.labels[t + 1].pixels[y * width + target] == snippet.labels[t].pixels[i] { agree += 1 }
          if snippet.labels[t + 1].pixels[i] == snippet.labels[t].pixels[i] { stayAgree += 1 }
        }
      }
    }
    XCTAssertGreaterThan(Double(agree) / Double(total), 0.99, "labels moved by the flow")
    XCTAssertGreaterThan(agree, stayAgree, "the flow explains more than standing still")
  }

  func testEgoMotionVariesWithinASnippet() throws {
    var stops = 0, changes = 0
    for index in 0..<6 {
      let snippet = try Synthetic.streetSnippet(seed: 0, split: "train", index: index, frames: 30, width: 64, height: 32)
      let speeds = zip(snippet.pan.dropFirst(), snippet.pan).map { $0 - $1 }
      stops += speeds.filter { abs($0) < 1e-9 }.count
      changes += zip(speeds.dropFirst(), speeds).filter { abs($0 - $1) > 0.2 }.count
    }
    XCTAssertGreaterThan(stops, 0, "the camera stops")
    XCTAssertGreaterThan(changes, 12, "and changes speed within snippets")
  }

  func testEveryFrameIsLabelledWithItsFlowInTheCityscapesLayout() throws {
    var options = Synthetic.StreetOptions()
    (options.trainSnippets, options.valSnippets, options.frames, options.annotatedFrame, options.width, options.height) = (1, 1, 5, 3, 48, 32)
    try Synthetic.writeStreet(to: root, options: options)
    let snippets = try VideoSnippets.cityscapes(root: root, split: "val")
    let snippet = try XCTUnwrap(snippets.snippets.first)
    XCTAssertEqual(snippet.labelled, [0, 1, 2, 3, 4])
    XCTAssertEqual(snippet.annotated, 3, "the frame leftImg8bit/ holds")
    let made = try Synthetic.streetSnippet(seed: 0, split: "val", index: 0, frames: 5, width: 48, height: 32)
    XCTAssertEqual(try snippets.label(at: 1, of: snippet).pixels, made.labels[1].pixels.map { [7: 0, 11: 2, 23: 10, 24: 11, 26: 13][$0]! })
    let flow = try FlowFile.read(root.appendingPathComponent("flow/val/synth/synth_000000_000002_flow.flo"))
    XCTAssertEqual(flow, made.flows[2])
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("flow/val/synth/synth_000000_000004_flow.flo").path),
                   "the last frame has no next frame")
    XCTAssertThrowsError(try snippets.label(at: 7, of: snippet))
  }
}
