import Foundation
import SegKitData
import SegKitInference
import SegKitModels
import SegKitTestSupport
import XCTest

/// XMem's memory and per-frame loop against the oracle's (Benchmarks/python/
/// xmem_reference.py, itself checked against XMem's code): the same random weights,
/// frames and masks; every frame's probabilities, memory readout, hidden state and memory
/// sizes, over sequences long enough to consolidate working memory into long-term memory
/// several times and to fill long-term memory past its cap.
final class XMemProcessorTests: XCTestCase {
  /// Where the objects first appear, and the settings, of one oracle run.
  struct Scenario {
    var frames: Int
    /// Frame → the new objects' ids given on it (ids 1, 2, … in order).
    var arrivals: [Int: [Int]]
    var settings: XMemSettings
  }

  static func tinySettings(maxLongTermElements: Int) -> XMemSettings {
    var settings = XMemSettings()
    (settings.memEvery, settings.topK, settings.maxMidTermFrames, settings.minMidTermFrames) = (2, 30, 3, 2)
    (settings.prototypes, settings.maxLongTermElements) = (8, maxLongTermElements)
    return settings
  }

  func check(_ scenario: Scenario, file: StaticString = #filePath, line: UInt = #line) throws -> (consolidations: Int, longTerm: Int) {
    let folder = try Oracle.temporaryDirectory("xmem")
    defer { try? FileManager.default.removeItem(at: folder) }
    let s = scenario.settings
    let arrivals = scenario.arrivals.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    let oracle = try OracleTensors.run(try OracleModels.xmem() + "\n" + #"""
      net = OracleXMem()
      randomize(net, 3)
      torch.save(net.state_dict(), "\#(folder.path)/XMem.pth")
      proc = OracleXMemProcessor(net, mem_every=\#(s.memEvery), top_k=\#(s.topK), max_mid_term_frames=\#(s.maxMidTermFrames),
                                 min_mid_term_frames=\#(s.minMidTermFrames), num_prototypes=\#(s.prototypes),
                                 max_long_term_elements=\#(s.maxLongTermElements))
      arrivals = {\#(arrivals)}
      H, W = 90, 120
      # Frames that drift smoothly, and blob-shaped objects, so memory reading has structure to find.
      ys, xs = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
      base = torch.randn(3, H // 6, W // 6)
      labels = []
      with torch.no_grad():
          for t in range(\#(scenario.frames)):
              frame = F.interpolate(base[None], size=(H, W), mode="bilinear", align_corners=False)[0]
              frame = torch.roll(frame, shifts=(t, 2 * t), dims=(1, 2)) + 0.1 * torch.randn(3, H, W)
              save(f"frame{t}", frame)
              mask, valid = None, None
              if t in arrivals:
                  valid = arrivals[t]
                  labels = labels + valid
                  proc.set_all_labels(labels)
                  mask = torch.zeros(len(labels), H, W)
                  for obj in valid:
                      cy, cx = 15 + 11 * obj, 20 + 17 * obj
                      mask[obj - 1] = (((ys - cy) / 14) ** 2 + ((xs - cx) / 20) ** 2 < 1).float()
                  save(f"mask{t}", mask)
              prob = proc.step(frame, mask, valid, end=(t == \#(scenario.frames) - 1))
              save(f"prob{t}", prob)
              if proc.last_readout is not None:
                  save(f"readout{t}", proc.last_readout)
              if proc.hidden is not None:
                  save(f"hidden{t}", proc.hidden)
              save(f"sizes{t}", torch.tensor([proc.work_size, proc.long_size, proc.consolidations]))
      """#)
    var entries: [String: Tensor] = [:]
    for (name, tensor) in try StateDict.load(contentsOf: folder.appendingPathComponent("XMem.pth")) { entries[name] = tensor }
    let processor = try XMemProcessor(network: try XMem(stateDict: entries).eval(), settings: scenario.settings)
    try Torch.withNoGrad {
      for t in 0..<scenario.frames {
        let given = scenario.arrivals[t]
        let probabilities = try processor.step(try oracle["frame\(t)"], masks: given == nil ? nil : try oracle["mask\(t)"],
                                               annotated: given ?? [], isLast: t == scenario.frames - 1)
        try assertMatchesOracle(probabilities, try oracle["prob\(t)"], rtol: 1e-4, atol: 1e-4, "frame \(t) probabilities", file: file, line: line)
        if given == nil || t > 0 {
          if let readout = try? oracle["readout\(t)"] {
            try assertMatchesOracle(processor.lastReadout, readout, rtol: 1e-4, atol: 1e-4, "frame \(t) readout", file: file, line: line)
          }
        }
        try assertMatchesOracle(processor.hidden, try oracle["hidden\(t)"], rtol: 1e-4, atol: 1e-4, "frame \(t) hidden state", file: file, line: line)
        let sizes = try oracle["sizes\(t)"].toArray(Int64.self).map(Int.init)
        let ours = processor.memorySizes
        XCTAssertEqual([ours.working, ours.longTerm, ours.consolidations], sizes, "frame \(t): working, long-term, consolidations", file: file, line: line)
      }
    }
    let sizes = processor.memorySizes
    return (sizes.consolidations, sizes.longTerm)
  }

  func testOneGroupConsolidatesAndRemovesTheLeastUsed() throws {
    let outcome = try check(Scenario(frames: 14, arrivals: [0: [1, 2]], settings: Self.tinySettings(maxLongTermElements: 20)))
    XCTAssertGreaterThanOrEqual(outcome.consolidations, 4, "working memory consolidated several times")
    XCTAssertLessThanOrEqual(outcome.longTerm, 20, "long-term memory held to its cap")
  }

  func testObjectsArrivingOnLaterFramesFormGroups() throws {
    let outcome = try check(Scenario(frames: 14, arrivals: [0: [1], 3: [2], 8: [3]], settings: Self.tinySettings(maxLongTermElements: 10_000)))
    XCTAssertGreaterThanOrEqual(outcome.consolidations, 3)
  }
}

/// The segmenter around the processor: XMem's evaluation resizing (frames to a shorter
/// side, masks by nearest neighbour, probabilities back), object ids, and an object
/// first given on a later frame, against the oracle's `preprocess`, `resize_mask` and loop.
final class XMemSegmenterTests: XCTestCase {
  func testResizesLikeXMemsEvaluationAndAddsObjectsLater() throws {
    let folder = try Oracle.temporaryDirectory("xmem")
    defer { try? FileManager.default.removeItem(at: folder) }
    let (h, w, frames) = (70, 100, 5)
    // Frames and masks made here, as 8-bit images the segmenter reads.
    var images: [Image] = [], masks: [Int: Image] = [:]
    for t in 0..<frames {
      var pixels = [UInt8](repeating: 0, count: h * w * 3)
      for y in 0..<h { for x in 0..<w { for c in 0..<3 { pixels[(y * w + x) * 3 + c] = UInt8((x * 3 + y * 5 + c * 70 + t * 9 + (x * y) % 23) % 256) } } }
      images.append(try Image(width: w, height: h, channels: 3, pixels: pixels))
    }
    func blob(_ id: UInt8, cy: Int, cx: Int) throws -> Image {
      var pixels = [UInt8](repeating: 0, count: h * w)
      for y in 0..<h { for x in 0..<w where abs(y - cy) < 12 && abs(x - cx) < 18 { pixels[y * w + x] = id } }
      return try Image(width: w, height: h, channels: 1, pixels: pixels)
    }
    masks[0] = try blob(3, cy: 25, cx: 30)  // ids need not start at 1
    masks[2] = try blob(7, cy: 45, cx: 70)
    let inputs = try (0..<frames).map { ("frame\($0)", try images[$0].tensor()) }
      + masks.map { ("mask\($0.key)", try $0.value.labelTensor()) }
    let oracle = try OracleTensors.run(try OracleModels.xmem() + "\n" + #"""
      inputs = load_inputs()
      net = OracleXMem()
      randomize(net, 11)
      torch.save(net.state_dict(), "\#(folder.path)/XMem.pth")
      proc = OracleXMemProcessor(net, mem_every=2, top_k=20)
      labels = []
      with torch.no_grad():
          for t in range(\#(frames)):
              rgb = (inputs[f"frame{t}"] * 255).round().to(torch.uint8).permute(1, 2, 0)
              image = preprocess(rgb, 64)
              mask, valid = None, None
              if f"mask{t}" in inputs:
                  ids = [int(i) for i in inputs[f"mask{t}"].unique() if i != 0]
                  valid = list(range(len(labels) + 1, len(labels) + len(ids) + 1))
                  labels = labels + ids
                  proc.set_all_labels(list(range(1, len(labels) + 1)))
                  onehot = torch.stack([(inputs[f"mask{t}"] == i).float() for i in labels])
                  mask = resize_mask(onehot, 64)
              prob = proc.step(image, mask, valid)
              prob = F.interpolate(prob[None], size=(\#(h), \#(w)), mode="bilinear", align_corners=False)[0]
              save(f"prob{t}", prob[1:])
      """#, inputs: inputs)
    var settings = XMemSettings()
    (settings.size, settings.memEvery, settings.topK) = (64, 2, 20)
    var entries: [String: Tensor] = [:]
    for (name, tensor) in try StateDict.load(contentsOf: folder.appendingPathComponent("XMem.pth")) { entries[name] = tensor }
    let segmenter = try XMemSegmenter(network: try XMem(stateDict: entries).eval(), settings: settings)
    try Torch.withNoGrad {
      for t in 0..<frames {
        let labels = t == 0 ? try segmenter.start(firstFrame: images[t], mask: masks[t])
          : try masks[t].map { try segmenter.next(images[t], mask: $0) } ?? segmenter.next(images[t])
        try assertMatchesOracle(segmenter.lastProbabilities, try oracle["prob\(t)"], rtol: 1e-4, atol: 1e-4, "frame \(t)")
        XCTAssertTrue(Set(labels.pixels).isSubset(of: [0, 3, 7]), "frame \(t): the masks' own ids")
        XCTAssertEqual(segmenter.objectIDs, t < 2 ? [3] : [3, 7])
      }
      // A frame of another size is refused by name, not left to a tensor error.
      let small = Image(width: 50, height: 40, channels: 3, filling: 9)
      XCTAssertThrowsError(try segmenter.next(small)) { XCTAssertTrue("\($0)".contains("frame 5 is 50×40, the sequence's first 100×70"), "\($0)") }
    }

    // int8: the first three frames run in float32 while the convolutions learn their
    // input ranges, the rest in int8, close to float32's probabilities.
    let optimised = try XMem(stateDict: entries).eval()
    try optimised.optimizeForInference()
    let int8 = try XMemSegmenter(network: optimised, settings: settings, precision: .int8)
    func quantised() -> Int { optimised.modules().compactMap { ($0 as? Conv2d)?.int8 }.count }
    try Torch.withNoGrad {
      for t in 0..<frames {
        _ = t == 0 ? try int8.start(firstFrame: images[t], mask: masks[t])
          : try masks[t].map { try int8.next(images[t], mask: $0) } ?? int8.next(images[t])
        let expected = try oracle["prob\(t)"]
        if t < 2 { XCTAssertEqual(quantised(), 0, "frame \(t) calibrates in float32") }
        if t < 3 {
          try assertMatchesOracle(int8.lastProbabilities, expected, rtol: 1e-4, atol: 1e-4, "int8 run, calibration frame \(t)")
        } else {
          let error = try (XCTUnwrap(int8.lastProbabilities) - expected).abs().mean().item()
          XCTAssertLessThan(error, 0.03, "int8 frame \(t): mean probability error \(error)")
        }
      }
    }
    XCTAssertGreaterThan(quantised(), 60, "the ungrouped convolutions run in int8")
    XCTAssertThrowsError(try XMemSegmenter(network: optimised, settings: settings, precision: .bf16)) {
      XCTAssertTrue("\($0)".contains("fp32 or int8"), "\($0)")
    }
  }
}
