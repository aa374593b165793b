import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

final class AugmentationTests: XCTestCase {
  /// Normalisation that leaves 0–255 values as they are.
  private func raw(_ augmentation: Augmentation) -> Augmentation {
    var a = augmentation
    a.normalization = InputNormalization(mean: [0, 0, 0], std: [1 / 255, 1 / 255, 1 / 255])
    return a
  }

  /// A blocky scene: label = block id (4×4 blocks), the image paints each block in its own colour.
  private func blocks(width: Int = 24, height: Int = 16, seed: Int = 0) throws -> Sample {
    var labels = [UInt8](repeating: 0, count: width * height)
    var pixels = [UInt8](repeating: 0, count: width * height * 3)
    for y in 0..<height {
      for x in 0..<width {
        let id = UInt8(((y / 4) * 7 + (x / 4) + seed) % 20)
        labels[y * width + x] = id
        let color = blockColor(id)
        pixels[(y * width + x) * 3 ..< (y * width + x) * 3 + 3] = [color.0, color.1, color.2][...]
      }
    }
    return Sample(name: "blocks", image: try Image(width: width, height: height, channels: 3, pixels: pixels),
                  label: try Image(width: width, height: height, channels: 1, pixels: labels))
  }

  private func blockColor(_ id: UInt8) -> (UInt8, UInt8, UInt8) { (id * 12 + 5, 250 - id * 11, UInt8((Int(id) * 37) % 251)) }

  func testPureScaleMatchesTorchInterpolate() throws {
    var sample = try blocks(width: 13, height: 9)
    // Smooth random content so bilinear weights matter.
    var random = SeededRandom(seed: 7)
    sample.image.pixels = sample.image.pixels.map { _ in UInt8(random.below(256)) }
    var cases: [(Double, AugmentedSample)] = []
    for scale in [0.5, 0.75, 1.5, 2.0] {
      var a = Augmentation()
      (a.minScale, a.maxScale) = (scale, scale)
      cases.append((scale, try raw(a).apply(to: sample, seed: 0)))
    }
    let folder = try Oracle.temporaryDirectory("segkit-aug")
    defer { try? FileManager.default.removeItem(at: folder) }
    try Data(sample.image.pixels).write(to: folder.appendingPathComponent("image.raw"))
    try Data(sample.label!.pixels).write(to: folder.appendingPathComponent("label.raw"))
    let sizes = cases.map { "\($0.1.height)x\($0.1.width)" }
    let output = try Oracle.run("""
      import sys, numpy as np, torch, torch.nn.functional as F
      d = sys.argv[1]
      img = torch.from_numpy(np.fromfile(f"{d}/image.raw", np.uint8).reshape(9, 13, 3)).permute(2, 0, 1)[None].float()
      lab = torch.from_numpy(np.fromfile(f"{d}/label.raw", np.uint8).reshape(1, 1, 9, 13)).float()
      for i, size in enumerate(sys.argv[2:]):
          h, w = map(int, size.split("x"))
          F.interpolate(img, size=(h, w), mode="bilinear", align_corners=False)[0].numpy().astype(np.float32).tofile(f"{d}/img{i}.raw")
          F.interpolate(lab, size=(h, w), mode="nearest-exact")[0, 0].numpy().astype(np.uint8).tofile(f"{d}/lab{i}.raw")
      print("ok")
      """, arguments: [folder.path] + sizes)
    XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "ok")
    for (i, (scale, out)) in cases.enumerated() {
      XCTAssertEqual(out.width, Int(13 * scale))
      let torchImage = try Data(contentsOf: folder.appendingPathComponent("img\(i).raw")).withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
      let torchLabel = [UInt8](try Data(contentsOf: folder.appendingPathComponent("lab\(i).raw")))
      let worst = zip(out.image, torchImage).map { abs($0 - $1) }.max()!
      XCTAssertLessThan(worst, 1e-3, "scale \(scale)")
      XCTAssertEqual(out.label, torchLabel, "scale \(scale)")
    }
  }

  func testLabelsStayAlignedWithTheImageUnderEveryGeometricOp() throws {
    var a = Augmentation.deeplab(crop: 20, minScale: 0.5, maxScale: 2.0, step: 0.25)
    (a.rotation, a.shear, a.translation) = (25, 10, 0.1)
    a.imageInterpolation = .nearest
    a.imagePadding = [1, 2, 3]
    a = raw(a)
    let sample = try blocks()
    var padded = 0
    for seed in 0..<40 as Range<UInt64> {
      let out = try a.apply(to: sample, seed: seed)
      XCTAssertEqual(out.width, 20)
      XCTAssertEqual(out.height, 20)
      let image = try a.displayImage(out)
      let label = try XCTUnwrap(out.label)
      for i in 0..<(out.width * out.height) {
        let pixel = (image.pixels[3 * i], image.pixels[3 * i + 1], image.pixels[3 * i + 2])
        if label[i] == 255 {
          XCTAssertTrue(pixel == (1, 2, 3), "seed \(seed) pixel \(i): padding label over image \(pixel)")
          padded += 1
        } else {
          XCTAssertTrue(pixel == blockColor(label[i]), "seed \(seed) pixel \(i): label \(label[i]) over image \(pixel)")
        }
      }
    }
    XCTAssertGreaterThan(padded, 0)
  }

  func testBilinearImagesNeverBlendLabels() throws {
    var a = Augmentation.deeplab(crop: 17, minScale: 0.5, maxScale: 1.75, step: 0.25)
    (a.rotation, a.shear) = (30, 15)
    let sample = try blocks()
    let allowed = Set(sample.label!.pixels + [255])
    for seed in 0..<20 as Range<UInt64> {
      let label = try XCTUnwrap(try a.apply(to: sample, seed: seed).label)
      XCTAssertTrue(Set(label).isSubset(of: allowed), "seed \(seed): \(Set(label).subtracting(allowed))")
    }
  }

  func testSameSeedSameResultAndEveryKnobIsDeterministic() throws {
    var a = Augmentation.deeplab(crop: 16, minScale: 0.5, maxScale: 2.0, step: 0.25)
    (a.rotation, a.shear, a.translation) = (20, 5, 0.1)
    (a.brightness, a.contrast, a.saturation, a.hue) = (0.4, 0.4, 0.4, 0.1)
    (a.blurProbability, a.noiseProbability, a.noiseStd) = (0.5, 0.5, 8)
    let sample = try blocks()
    let first = try a.apply(to: sample, seed: 42)
    let again = try a.apply(to: sample, seed: 42)
    XCTAssertEqual(first.image, again.image)
    XCTAssertEqual(first.label, again.label)
    let other = try a.apply(to: sample, seed: 43)
    XCTAssertNotEqual(first.image, other.image)
  }

  func testScaleStepsFollowDeepLab() {
    let a = Augmentation.deeplab(minScale: 0.5, maxScale: 2.0, step: 0.25)
    var random = SeededRandom(seed: 1)
    var seen = Set<Double>()
    for _ in 0..<500 { seen.insert(a.drawScale(&random)) }
    XCTAssertEqual(seen, [0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0])
  }

  func testFlowIsWarpedAndItsVectorsTransformed() throws {
    var sample = try blocks(width: 8, height: 6)
    let plane = 48
    sample.flows[.next] = try FlowField(width: 8, height: 6, values: [Float](repeating: 3, count: plane) + [Float](repeating: 1, count: plane))
    sample.masks[.previous] = sample.label
    var flip = Augmentation()
    flip.flipProbability = 1
    let flipped = try flip.apply(to: sample, seed: 0)
    let flippedFlow = try XCTUnwrap(flipped.flows[.next])
    XCTAssertEqual(Set(flippedFlow[0..<plane]), [-3])
    XCTAssertEqual(Set(flippedFlow[plane...]), [1])
    XCTAssertEqual(flipped.masks[.previous], flipped.label)
    XCTAssertEqual(Array(flipped.label![0..<8]), Array(sample.label!.pixels[0..<8].reversed()))
    var zoom = Augmentation()
    (zoom.minScale, zoom.maxScale) = (2, 2)
    let zoomed = try XCTUnwrap(try zoom.apply(to: sample, seed: 0).flows[.next])
    XCTAssertEqual(Set(zoomed), [6, 2])
    XCTAssertEqual(zoomed.count, 2 * 16 * 12)
  }

  /// Labels of a scene of 8×8 blocks, in multiples of 12 so that a blend of two shows up,
  /// for the scene moved by (dx, dy).
  private func movedBlockLabels(width: Int, height: Int, dx: Int, dy: Int) throws -> Image {
    let pixels = (0..<(width * height)).map { i -> UInt8 in
      let (x, y) = (i % width - dx + 64, i / width - dy + 64)  // offset keeps the division non-negative
      return UInt8(((y / 8) * 7 + x / 8) % 20 * 12)
    }
    return try Image(width: width, height: height, channels: 1, pixels: pixels)
  }

  func testEveryExtraStaysAlignedUnderScaleCropFlipAndRotation() throws {
    let (width, height, motion) = (64, 48, (dx: 5, dy: 3))
    var sample = try blocks(width: width, height: height)
    sample.label = try movedBlockLabels(width: width, height: height, dx: 0, dy: 0)
    var next = sample.image
    next.pixels.reverse()  // any other picture: frames are checked for shared colour draws, not content
    sample.frames = [.previous: sample.image, .next: next]
    let nextLabel = try movedBlockLabels(width: width, height: height, dx: motion.dx, dy: motion.dy)
    sample.masks = [.previous: try XCTUnwrap(sample.label), .next: nextLabel]
    let plane = width * height
    sample.flows[.next] = try FlowField(width: width, height: height,
                                        values: [Float](repeating: Float(motion.dx), count: plane) + [Float](repeating: Float(motion.dy), count: plane))
    var a = Augmentation.deeplab(crop: 40, minScale: 0.75, maxScale: 1.5, step: 0.25)
    a.rotation = 20
    (a.brightness, a.contrast, a.saturation, a.hue, a.blurProbability) = (0.3, 0.3, 0.3, 0.05, 0.5)
    var (matched, compared, flips) = (0, 0, Set<Bool>())
    for seed in 0..<12 as Range<UInt64> {
      let out = try a.apply(to: sample, seed: seed)
      let label = try XCTUnwrap(out.label)
      let (previousMask, nextMask) = (try XCTUnwrap(out.masks[.previous]), try XCTUnwrap(out.masks[.next]))
      let flow = try XCTUnwrap(out.flows[.next])
      // The same frame with the same colour draws comes out as the image.
      XCTAssertEqual(out.frames[.previous], out.image, "seed \(seed)")
      XCTAssertEqual(out.frames[.next]?.count, out.image.count)
      let n = out.width * out.height
      XCTAssertEqual(n, 40 * 40)
      for i in 0..<n {
        XCTAssertTrue(label[i] == 255 || label[i] % 12 == 0, "seed \(seed): blended label \(label[i])")
        XCTAssertTrue(nextMask[i] % 12 == 0, "seed \(seed): blended mask \(nextMask[i])")
        // The mask copied from the label follows it exactly; its padding is 0 where the label's is void.
        XCTAssertEqual(previousMask[i], label[i] == 255 ? 0 : label[i], "seed \(seed) pixel \(i)")
        if label[i] == 255 { XCTAssertEqual([flow[i], flow[n + i]], [0, 0], "seed \(seed): flow in the padding") }
      }
      // A constant flow stays constant inside; the sign of its x says whether the plan flipped.
      guard let inside = (0..<n).first(where: { label[$0] != 255 }) else { continue }
      let vector = (flow[inside], flow[n + inside])
      flips.insert(vector.0 < 0)
      // Following the warped flow from a pixel lands on the same block in the next frame's mask.
      for i in 0..<n where label[i] != 255 {
        XCTAssertEqual(flow[i], vector.0, accuracy: 1e-4)
        XCTAssertEqual(flow[n + i], vector.1, accuracy: 1e-4)
        let x = Int((Float(i % out.width) + 0.5 + vector.0).rounded(.down))
        let y = Int((Float(i / out.width) + 0.5 + vector.1).rounded(.down))
        guard (0..<out.width).contains(x), (0..<out.height).contains(y) else { continue }
        compared += 1
        if nextMask[y * out.width + x] == label[i] { matched += 1 }
      }
    }
    XCTAssertEqual(flips, [false, true], "the seeds should cover flipped and unflipped plans")
    XCTAssertGreaterThan(compared, 5000)
    // Only pixels near block edges may land on a neighbour (nearest rounding); a flow moved
    // the wrong way or left unrotated misses far more often.
    XCTAssertGreaterThan(Double(matched) / Double(compared), 0.85)
  }

  func testMismatchedExtrasAreRejectedNamingTheEntry() throws {
    let sample = try blocks()
    var small = sample
    small.masks[.reference] = Image(width: 3, height: 3, channels: 1)
    XCTAssertThrowsError(try Augmentation().apply(to: small, seed: 0)) { XCTAssertTrue("\($0)".contains("blocks: mask 'reference' is 3×3")) }
    var gray = sample
    gray.frames[.clip(2)] = Image(width: 24, height: 16, channels: 1)
    XCTAssertThrowsError(try Augmentation().apply(to: gray, seed: 0)) { XCTAssertTrue("\($0)".contains("blocks: frame 'clip2' has 1 channels")) }
    var short = sample
    short.flows[.previous] = try FlowField(width: 24, height: 16, values: [Float](repeating: 0, count: 2 * 24 * 16))
    short.flows[.previous]?.values.removeLast()
    XCTAssertThrowsError(try Augmentation().apply(to: short, seed: 0)) { XCTAssertTrue("\($0)".contains("blocks: flow 'previous' holds 767 values")) }
  }

  func testPhotometricOpsLeavePaddingAndLabelsAlone() throws {
    var a = Augmentation()
    a.crop = Size2(10, 30)  // wider than the image: padding on the right
    a.randomCrop = false
    (a.brightness, a.contrast, a.saturation, a.hue) = (0.5, 0.5, 0.5, 0.2)
    (a.blurProbability, a.noiseProbability, a.noiseStd) = (1, 1, 10)
    let sample = try blocks(width: 24, height: 16)
    let out = try a.apply(to: sample, seed: 3)
    let plane = out.width * out.height
    for y in 0..<out.height {
      for x in 24..<30 {
        for c in 0..<3 { XCTAssertEqual(out.image[c * plane + y * 30 + x], 0, accuracy: 1e-6) }  // mean padding → 0
        XCTAssertEqual(out.label![y * 30 + x], 255)
      }
    }
    XCTAssertEqual(Array(out.label![0..<24]), Array(sample.label!.pixels[0..<24]))
  }

  func testMismatchedLabelIsRejectedWithTheSampleName() throws {
    var sample = try blocks()
    sample.label = Image(width: 3, height: 3, channels: 1)
    XCTAssertThrowsError(try Augmentation().apply(to: sample, seed: 0)) { XCTAssertTrue("\($0)".contains("blocks: label is 3×3")) }
  }
}
