import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

/// Flow files, rendering and warping: `.flo` as its specification lays it out, warping
/// against PyTorch's grid_sample, and DIS with the warp direction on a moving object.
final class FlowTests: XCTestCase {
  /// out(x) = input(x + F(x)) against F.grid_sample on pixel coordinates normalised
  /// with align_corners=True (another normalisation than SegKit's), on a smooth flow
  /// that reaches outside the image.
  func testWarpMatchesGridSample() throws {
    Torch.manualSeed(4)
    let (height, width) = (23, 31)
    let input = try Tensor.randn([2, 3, height, width])
    let coarse = try Tensor.randn([2, 2, 4, 5]) * 6
    let flow = try coarse.interpolate(size: Size2(height, width), mode: .bilinear, alignCorners: true)
    let oracle = try OracleTensors.run(#"""
      import torch.nn.functional as F
      x, flow = load_inputs()["input"], load_inputs()["flow"]
      n, c, h, w = x.shape
      ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
      gx = 2 * (xs + flow[:, 0]) / (w - 1) - 1
      gy = 2 * (ys + flow[:, 1]) / (h - 1) - 1
      save("warped", F.grid_sample(x, torch.stack([gx, gy], -1), mode="bilinear", padding_mode="zeros", align_corners=True))
      """#, inputs: [("input", input), ("flow", flow)])
    try oracle.expect(try FlowWarp.warp(input, by: flow), "warped", atol: 1e-5, rtol: 1e-5)
    // One flow for a batch, and an unbatched input.
    assertClose(try FlowWarp.warp(input[0], by: flow[0]), try oracle["warped"][0], atol: 1e-5, rtol: 1e-5, "unbatched")
    XCTAssertThrowsError(try FlowWarp.warp(input, by: try Tensor.zeros([2, 2, height, width - 1])))
  }

  /// A textured object moved by (dx, dy) over a textured background: DIS finds the
  /// motion on the object; the previous mask warped with the flow from the current
  /// frame to the previous one lands on the current mask, the other direction not.
  func testDISAndTheDirectionOfWarping() throws {
    let (width, height, dx, dy) = (128, 96, 6, 4)
    func texture(_ x: Double, _ y: Double, _ seed: Double) -> Double {
      128 + 50 * sin(x * 0.37 + y * 0.11 + seed) + 40 * cos(y * 0.29 - x * 0.13 + 2 * seed) + 25 * sin((x + 2 * y) * 0.21)
    }
    func frame(shift: (Int, Int)) -> (Image, Image) {
      var image = Image(width: width, height: height, channels: 3), mask = Image(width: width, height: height, channels: 1)
      for y in 0..<height {
        for x in 0..<width {
          let (u, v) = (x - 40 - shift.0, y - 30 - shift.1)
          let inside = (0..<40).contains(u) && (0..<30).contains(v)
          let value = inside ? texture(Double(u), Double(v), 1) : 0.6 * texture(Double(x) * 1.7, Double(y) * 1.3, 5)
          for c in 0..<3 { image[x, y, c] = UInt8(max(0, min(255, value + Double(c * 20)))) }
          mask.pixels[y * width + x] = inside ? 1 : 0
        }
      }
      return (image, mask)
    }
    let (previous, previousMask) = frame(shift: (0, 0)), (current, currentMask) = frame(shift: (dx, dy))
    let forward = try OpticalFlow.dis(from: previous, to: current, preset: .medium)
    let backward = try OpticalFlow.dis(from: current, to: previous, preset: .medium)
    // On the object's inner part (away from its edges) the flow is its motion.
    var (sumX, sumY, count) = (0.0, 0.0, 0.0)
    for y in 36..<54 {
      for x in 48..<72 {
        sumX += Double(forward.values[y * width + x])
        sumY += Double(forward.values[width * height + y * width + x])
        count += 1
      }
    }
    XCTAssertEqual(sumX / count, Double(dx), accuracy: 0.5)
    XCTAssertEqual(sumY / count, Double(dy), accuracy: 0.5)

    func iou(_ a: Image, _ b: Image) -> Double {
      let both = zip(a.pixels, b.pixels).filter { $0 != 0 && $1 != 0 }.count
      let either = zip(a.pixels, b.pixels).filter { $0 != 0 || $1 != 0 }.count
      return Double(both) / Double(max(either, 1))
    }
    let right = try FlowWarp.warp(mask: previousMask, by: backward), wrong = try FlowWarp.warp(mask: previousMask, by: forward)
    XCTAssertGreaterThan(iou(right, currentMask), 0.85)
    XCTAssertLessThan(iou(wrong, currentMask), iou(previousMask, currentMask), "the wrong direction moves the mask away")
    XCTAssertEqual(Set(right.pixels), [0, 1], "object ids are kept")
  }

  /// `.flo` round trip, a file written by numpy after the format's specification read
  /// back exactly, and damaged files as errors naming the file.
  func testFloFiles() throws {
    let folder = try Oracle.temporaryDirectory("segkit-flo")
    defer { try? FileManager.default.removeItem(at: folder) }
    let flow = try FlowField(width: 5, height: 3, values: (0..<30).map { Float($0) * 0.37 - 4.1 })
    let url = folder.appendingPathComponent("a.flo")
    try FlowFile.write(flow, to: url)
    XCTAssertEqual(try FlowFile.read(url), flow)

    let numpyFile = folder.appendingPathComponent("numpy.flo")
    _ = try Oracle.run(#"""
      import sys, numpy as np
      h, w = 3, 5
      u = np.arange(h * w, dtype=np.float32).reshape(h, w) * 0.5 - 1
      v = -np.arange(h * w, dtype=np.float32).reshape(h, w) * 0.25
      with open(sys.argv[1], "wb") as f:
          np.array([202021.25], "<f4").tofile(f)
          np.array([w, h], "<i4").tofile(f)
          np.stack([u, v], -1).astype("<f4").tofile(f)
      """#, arguments: [numpyFile.path])
    let read = try FlowFile.read(numpyFile)
    XCTAssertEqual([read.width, read.height], [5, 3])
    XCTAssertEqual(Array(read.values[0..<15]), (0..<15).map { Float($0) * 0.5 - 1 })
    XCTAssertEqual(Array(read.values[15..<30]), (0..<15).map { -Float($0) * 0.25 })

    let bytes = try Data(contentsOf: url)
    func message(_ data: Data) -> String {
      do { _ = try FlowFile.decode(data, name: "x.flo") } catch { return "\(error)" }
      return "no error"
    }
    XCTAssertTrue(message(bytes.dropLast(4)).contains("x.flo: 128 bytes, but a 5×3 field takes 132"), message(bytes.dropLast(4)))
    XCTAssertTrue(message(Data(bytes.prefix(7))).contains("too short"))
    var wrongTag = bytes
    wrongTag[0] = 0
    XCTAssertTrue(message(wrongTag).contains("not a Middlebury .flo file"))
    var huge = bytes
    huge.replaceSubrange(4..<12, with: [0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0x7F])
    XCTAssertTrue(message(huge).contains("over the limit"), message(huge))
    var negative = bytes
    negative.replaceSubrange(4..<8, with: [0xFF, 0xFF, 0xFF, 0xFF])
    XCTAssertTrue(message(negative).contains("-1×3 field"), message(negative))
  }

  /// The colour wheel: no motion is white, the largest motion to the right is red,
  /// unknown values are black; up is blue-violet.
  func testColourWheel() throws {
    let flow = try FlowField(width: 4, height: 1, values: [0, 2, 0, .nan, 0, 0, -2, 0])
    let image = FlowColor.render(flow)
    XCTAssertEqual(Array(image.pixels[0..<3]), [255, 255, 255])
    XCTAssertEqual(Array(image.pixels[3..<6]), [255, 0, 0])
    XCTAssertEqual(Array(image.pixels[6..<9]), [88, 0, 255])
    XCTAssertEqual(Array(image.pixels[9..<12]), [0, 0, 0])
  }

  /// A DAVIS split's flows computed once (t → t−1 and t → t+1), reused, refused when
  /// made with other settings or stale; split files cannot name paths outside the dataset.
  func testFlowCacheOfADAVISSplit() throws {
    let root = try Oracle.temporaryDirectory("segkit-flow-cache")
    defer { try? FileManager.default.removeItem(at: root) }
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames) = (0, 2, 3)
    (options.width, options.height, options.seed) = (48, 32, 3)
    try Synthetic.writeVideo(to: root, options: options)
    let sequences = try VideoDataset.davis2017(root: root, split: "val").sequences
    let folder = FlowCache.defaultFolder(forDatasetAt: root)
    let cache = try FlowCache(folder: folder, preset: .ultrafast)
    XCTAssertEqual(try cache.fill(sequences), 6)
    XCTAssertEqual(try cache.fill(sequences), 0, "the second run reuses every flow")
    let (first, middle, last) = (try cache.flows(of: sequences[0], frame: 0), try cache.flows(of: sequences[0], frame: 1),
                                 try cache.flows(of: sequences[0], frame: 2))
    XCTAssertNil(first.backward)
    XCTAssertNil(last.forward)
    let frames = try sequences[0].frames.map { try ImageIO.read($0.image) }
    XCTAssertEqual(middle.backward, try OpticalFlow.dis(from: frames[1], to: frames[0], preset: .ultrafast))
    XCTAssertEqual(middle.forward, try OpticalFlow.dis(from: frames[1], to: frames[2], preset: .ultrafast))

    XCTAssertThrowsError(try FlowCache(folder: folder, preset: .medium)) {
      XCTAssertTrue("\($0)".contains("made with dis (preset ultrafast), but this run asks for dis (preset medium)"), "\($0)")
    }
    let stale = folder.appendingPathComponent("\(sequences[1].name)/00001.forward.flo")
    try FlowFile.write(try FlowField(width: 4, height: 4, values: [Float](repeating: 0, count: 32)), to: stale)
    XCTAssertThrowsError(try cache.flows(of: sequences[1], frame: 1)) {
      XCTAssertTrue("\($0)".contains("the cache is stale"), "\($0)")
    }

    try "\(sequences[0].name)\n../../etc\n".write(to: root.appendingPathComponent("ImageSets/2017/bad.txt"), atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try VideoDataset.davis2017(root: root, split: "bad")) {
      XCTAssertTrue("\($0)".contains("bad.txt: line 2 names '../../etc', which is not a plain name"), "\($0)")
    }
  }
}
