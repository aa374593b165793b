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
