import Foundation
@testable import SegKitData
import SegKitTestSupport
import XCTest

/// The synthetic DAVIS generator's exact flows: what it writes is the motion it draws.
final class SyntheticVideoFlowTests: XCTestCase {
  private var folder: URL!

  override func setUpWithError() throws { folder = try Oracle.temporaryDirectory("segkit-synth-flow") }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

  static func options(camouflage: Bool = false) -> Synthetic.VideoOptions {
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames, options.width, options.height) = (0, 1, 4, 48, 32)
    (options.objects, options.seed, options.camouflage) = (2, 5, camouflage)
    return options
  }

  /// Each pixel of frame t, moved by the written flow, lands on the same point of
  /// what covers it in frame t (by the annotation): the same material point of that
  /// object (its texture coordinates, the ones it is drawn with) in frame t±1, or the
  /// same point of the panning background. Checked on every pair both ways, to 1e-4 px.
  func testWrittenFlowIsTheDrawnMotion() throws {
    let options = Self.options()
    try Synthetic.writeVideo(to: folder, options: options)
    let sequence = "synth-val-000"
    var rng = Synthetic.Generator(seed: options.seed, stream: "video/val", index: 0)
    let motion = Synthetic.VideoMotion(&rng, frames: options.frames, width: options.width, height: options.height, objects: 2)
    let (forward, backward) = Synthetic.flowFolders(of: folder)
    var checked = (objects: 0, background: 0)
    for t in 0..<options.frames {
      for u in [t - 1, t + 1] where (0..<options.frames).contains(u) {
        let file = (u > t ? forward : backward).appendingPathComponent(String(format: "\(sequence)/%05d.flo", t))
        let flow = try FlowFile.read(file)
        XCTAssertEqual([flow.width, flow.height], [48, 32])
        let mask = try ImageIO.readLabel(folder.appendingPathComponent(String(format: "Annotations/480p/\(sequence)/%05d.png", t)))
        let (here, there) = (motion.placed(at: t), motion.placed(at: u))
        for y in 0..<32 {
          for x in 0..<48 {
            let (px, py) = (Double(x) + 0.5, Double(y) + 0.5)
            let f = (Double(flow.values[y * 48 + x]), Double(flow.values[48 * 32 + y * 48 + x]))
            let id = Int(mask.pixels[y * 48 + x])
            guard id > 0 else {
              // The background is drawn at x + pan·t: the same point moves by −pan per frame.
              XCTAssertEqual(f.0, -motion.pan.0 * Double(u - t), accuracy: 1e-5)
              XCTAssertEqual(f.1, -motion.pan.1 * Double(u - t), accuracy: 1e-5)
              checked.background += 1
              continue
            }
            let point = try XCTUnwrap(here[id - 1].local(px, py))
            guard let moved = there[id - 1].local(px + f.0, py + f.1) else {
              // Only a point on the rim may fall outside by rounding.
              XCTAssertGreaterThan((point.0 * point.0 + point.1 * point.1).squareRoot() / here[id - 1].baseRadius, 0.999)
              continue
            }
            XCTAssertEqual(moved.0, point.0, accuracy: 1e-4, "object \(id) at (\(x), \(y)), frame \(t) → \(u)")
            XCTAssertEqual(moved.1, point.1, accuracy: 1e-4, "object \(id) at (\(x), \(y)), frame \(t) → \(u)")
            checked.objects += 1
          }
        }
      }
    }
    XCTAssertGreaterThan(checked.objects, 500)
    XCTAssertGreaterThan(checked.background, 500)
    // The objects move more than the camera.
    let flow = try FlowFile.read(forward.appendingPathComponent("\(sequence)/00000.flo"))
    XCTAssertGreaterThan(flow.values.map { abs(Double($0)) }.max() ?? 0, 1)
  }

  /// Camouflaged objects move and are annotated exactly as the textured ones (same
  /// masks, same flows) but are drawn with a patch of the background.
  func testCamouflageKeepsMotionAndMasks() throws {
    let plain = folder.appendingPathComponent("plain"), hidden = folder.appendingPathComponent("hidden")
    try Synthetic.writeVideo(to: plain, options: Self.options())
    try Synthetic.writeVideo(to: hidden, options: Self.options(camouflage: true))
    for t in 0..<4 {
      let name = String(format: "synth-val-000/%05d", t)
      XCTAssertEqual(try ImageIO.readLabel(plain.appendingPathComponent("Annotations/480p/\(name).png")),
                     try ImageIO.readLabel(hidden.appendingPathComponent("Annotations/480p/\(name).png")))
      XCTAssertNotEqual(try ImageIO.read(plain.appendingPathComponent("JPEGImages/480p/\(name).jpg")),
                        try ImageIO.read(hidden.appendingPathComponent("JPEGImages/480p/\(name).jpg")))
    }
    let (a, b) = (Synthetic.flowFolders(of: plain), Synthetic.flowFolders(of: hidden))
    for (plainFlow, hiddenFlow) in [(a.forward, b.forward), (a.backward, b.backward)] {
      let file = "synth-val-000/" + (plainFlow == a.forward ? "00000.flo" : "00001.flo")
      XCTAssertEqual(try FlowFile.read(plainFlow.appendingPathComponent(file)), try FlowFile.read(hiddenFlow.appendingPathComponent(file)))
    }
    // A camouflaged object's pixels are as smooth as the background: no two-colour texture.
    let frame = try ImageIO.read(hidden.appendingPathComponent("JPEGImages/480p/synth-val-000/00000.jpg"))
    let mask = try ImageIO.readLabel(hidden.appendingPathComponent("Annotations/480p/synth-val-000/00000.png"))
    var steps: [Double] = []
    for y in 0..<32 {
      for x in 0..<47 where mask.pixels[y * 48 + x] != 0 && mask.pixels[y * 48 + x + 1] == mask.pixels[y * 48 + x] {
        steps.append(abs(Double(frame[x + 1, y, 0]) - Double(frame[x, y, 0])))
      }
    }
    XCTAssertFalse(steps.isEmpty)
    XCTAssertLessThan(steps.reduce(0, +) / Double(steps.count), 12, "neighbouring object pixels differ by noise and the gradient only")
  }
}
