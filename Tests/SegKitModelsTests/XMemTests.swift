import Foundation
import SegKitModels
import SegKitTestSupport
import XCTest

/// XMem's network against the oracle's XMem, written from XMem's definitions
/// (Benchmarks/python/xmem_reference.py), with random weights saved by torch.save in
/// XMem's key layout, as its released `XMem.pth` is.
final class XMemTests: XCTestCase {
  /// Saves the oracle's randomised XMem (with `arguments` to its constructor) as a .pth
  /// file in `folder`, runs each module on fixed inputs and keeps the outputs.
  func oracle(arguments: String = "", in folder: URL, body: String = "") throws -> OracleTensors {
    try OracleTensors.run(try OracleModels.xmem() + "\n" + #"""
      net = OracleXMem(\#(arguments))
      randomize(net, 7)
      torch.save(net.state_dict(), "\#(folder.path)/XMem.pth")
      save_meta({"keys": list(net.state_dict().keys())})
      frame = torch.randn(1, 3, 64, 96)
      masks = torch.rand(1, 2, 64, 96)
      hidden = torch.randn(1, 2, net.hidden_dim, 4, 6) if net.hidden_dim > 0 else None
      readout = torch.randn(1, 2, net.value_dim, 4, 6)
      for name, t in [("frame", frame), ("masks", masks), ("readout", readout)] + ([("hidden", hidden)] if hidden is not None else []):
          save(name, t)
      with torch.no_grad():
          key, shrinkage, selection, f16, f8, f4 = net.encode_key(frame)
          for name, t in zip(["key", "shrinkage", "selection", "f16", "f8", "f4"], [key, shrinkage, selection, f16, f8, f4]):
              save(name, t)
          value, deep_hidden = net.encode_value(frame, f16, hidden, masks, is_deep_update=True)
          save("value", value)
          if deep_hidden is not None:
              save("deep_hidden", deep_hidden)
          new_hidden, logits, prob = net.segment((f16, f8, f4), readout, hidden, h_out=True, strip_bg=False)
          save("logits", logits)
          save("prob", prob)
          if new_hidden is not None:
              save("new_hidden", new_hidden)
      \#(body)
      """#)
  }

  /// XMem built and loaded from a weight file, as XMem's `load_weights` takes it.
  func load(_ url: URL) throws -> XMem {
    var entries: [String: Tensor] = [:]
    for (name, tensor) in try StateDict.load(contentsOf: url) { entries[name] = tensor }
    return try XMem(stateDict: entries).eval()
  }

  func testModulesMatchTheOracleAndXMemPthLoadsUnmodified() throws {
    let folder = try Oracle.temporaryDirectory("xmem")
    defer { try? FileManager.default.removeItem(at: folder) }
    let oracle = try oracle(in: folder)
    let network = try load(folder.appendingPathComponent("XMem.pth"))
    XCTAssertEqual(network.dimensions, XMem.Dimensions(key: 64, value: 512, hidden: 64))
    XCTAssertEqual(try network.stateDict().map { $0.0 }, oracle.meta["keys"] as? [String], "XMem's keys, in XMem's order")

    // The plain network, then the fast one (batch norm folded, activations fused, channels-last).
    for optimized in [false, true] {
      if optimized { try network.optimizeForInference() }
      try compare(network, with: oracle, label: optimized ? "optimised " : "")
    }
  }

  func compare(_ network: XMem, with oracle: OracleTensors, label: String) throws {
    try Torch.withNoGrad {
      let frame = try oracle["frame"]
      let encoded = try network.encodeKey(frame)
      try assertMatchesOracle(encoded.features.f4, try oracle["f4"], rtol: 1e-4, atol: 1e-4, label + "f4")
      try assertMatchesOracle(encoded.features.f8, try oracle["f8"], rtol: 1e-4, atol: 1e-4, label + "f8")
      try assertMatchesOracle(encoded.features.f16, try oracle["f16"], rtol: 1e-4, atol: 1e-4, label + "f16")
      try assertMatchesOracle(encoded.key, try oracle["key"], rtol: 1e-4, atol: 1e-4, label + "key")
      try assertMatchesOracle(encoded.shrinkage, try oracle["shrinkage"], rtol: 1e-4, atol: 1e-4, label + "shrinkage")
      try assertMatchesOracle(encoded.selection, try oracle["selection"], rtol: 1e-4, atol: 1e-4, label + "selection")

      let f16 = try oracle["f16"], hidden = try oracle["hidden"]
      let value = try network.encodeValue(frame: frame, f16: f16, hidden: hidden, masks: try oracle["masks"], deepUpdate: true)
      try assertMatchesOracle(value.value, try oracle["value"], rtol: 1e-4, atol: 1e-4, label + "value")
      try assertMatchesOracle(value.hidden, try oracle["deep_hidden"], rtol: 1e-4, atol: 1e-4, label + "hidden after the deep update")

      let features = (f16: f16, f8: try oracle["f8"], f4: try oracle["f4"])
      let segmented = try network.segment(features: features, readout: try oracle["readout"], hidden: hidden, updateHidden: true)
      try assertMatchesOracle(segmented.logits, try oracle["logits"], rtol: 1e-4, atol: 1e-4, label + "aggregated logits")
      try assertMatchesOracle(segmented.probabilities, try oracle["prob"], rtol: 1e-4, atol: 1e-5, label + "probabilities")
      try assertMatchesOracle(segmented.hidden, try oracle["new_hidden"], rtol: 1e-4, atol: 1e-4, label + "hidden after decoding")
      XCTAssertGreaterThan(try segmented.probabilities.std().item(), 0.01, "random weights that decode to a constant would prove little")
    }
  }

  func testACheckpointWithoutHiddenStateOrOthersChannelLoads() throws {
    let folder = try Oracle.temporaryDirectory("xmem")
    defer { try? FileManager.default.removeItem(at: folder) }
    let oracle = try oracle(arguments: "hidden_dim=0, single_object=True", in: folder, body: #"""
      with torch.no_grad():
          single = net.encode_value(frame, f16, None, masks[:, :1], is_deep_update=True)[0]
      save("single_value", single)
      """#)
    let network = try load(folder.appendingPathComponent("XMem.pth"))
    XCTAssertEqual(network.dimensions.hidden, 0)
    XCTAssertFalse(network.hasHiddenState)
    try Torch.withNoGrad {
      // The 4-channel conv1 gets a zero "others" filter: one object reads as XMem's single-object network.
      let value = try network.encodeValue(frame: try oracle["frame"], f16: try oracle["f16"], hidden: nil,
                                          masks: try oracle["masks"].slice(dim: 1, start: 0, end: 1))
      try assertMatchesOracle(value.value, try oracle["single_value"], rtol: 1e-4, atol: 1e-4, "single-object value")
      let features = (f16: try oracle["f16"], f8: try oracle["f8"], f4: try oracle["f4"])
      let segmented = try network.segment(features: features, readout: try oracle["readout"], hidden: nil)
      XCTAssertNil(segmented.hidden)
      try assertMatchesOracle(segmented.probabilities, try oracle["prob"], rtol: 1e-4, atol: 1e-5, "probabilities without a hidden state")
    }
  }

  func testWrongWeightsAreOneErrorListingEveryProblem() throws {
    var entries = Dictionary(uniqueKeysWithValues: try XMem().stateDict())
    entries["decoder.pred.weight"] = nil
    entries["key_encoder.res2.0.conv1.weight"] = try Tensor.zeros([64, 64, 3, 3])
    entries["decoder.extra.weight"] = try Tensor.zeros([1])
    XCTAssertThrowsError(try XMem(stateDict: entries)) { error in
      let text = "\(error)"
      XCTAssertTrue(text.contains("decoder.pred.weight"), text)
      XCTAssertTrue(text.contains("key_encoder.res2.0.conv1.weight"), text)
      XCTAssertTrue(text.contains("decoder.extra.weight"), text)
    }
    entries = [:]
    XCTAssertThrowsError(try XMem(stateDict: entries)) { error in
      XCTAssertTrue("\(error)".contains("key_proj.key_proj.weight"), "\(error)")
    }
  }

  /// The top-k affinity, read sparsely, against XMem's dense one (scattered zeros, then a
  /// product): the oracle's similarity and top-k softmax, usage and readout.
  func testTopKReadingMatchesXMemsDenseAffinity() throws {
    let oracle = try OracleTensors.run(try OracleModels.xmem() + "\n" + #"""
      mk, qk = torch.randn(1, 16, 300), torch.randn(1, 16, 70)
      ms, qe = torch.rand(1, 1, 300) + 1, torch.rand(1, 16, 70)
      values = torch.randn(3, 8, 300)
      similarity = get_similarity(mk, ms, qk, qe)
      affinity, usage = do_softmax(similarity, top_k=30, return_usage=True)
      for name, t in [("mk", mk), ("qk", qk), ("ms", ms), ("qe", qe), ("values", values), ("similarity", similarity),
                      ("affinity", affinity), ("usage", usage), ("readout", values @ affinity)]:
          save(name, t)
      """#)
    let similarity = try XMemMemoryReading.similarity(memoryKey: try oracle["mk"], shrinkage: try oracle["ms"],
                                                      queryKey: try oracle["qk"], selection: try oracle["qe"])
    try assertMatchesOracle(similarity, try oracle["similarity"], rtol: 1e-5, atol: 1e-4, "similarity")
    let affinity = try XMemMemoryReading.softmax(try oracle["similarity"], topK: 30)
    guard case .topK = affinity.form else { return XCTFail("30 of 300 elements is read sparsely") }
    try assertMatchesOracle(try affinity.dense(), try oracle["affinity"], rtol: 1e-5, atol: 1e-6, "affinity")
    try assertMatchesOracle(try affinity.usage(), try oracle["usage"], rtol: 1e-5, atol: 1e-5, "usage")
    try assertMatchesOracle(try affinity.read(try oracle["values"]), try oracle["readout"], rtol: 1e-5, atol: 1e-5, "readout")
  }
}
