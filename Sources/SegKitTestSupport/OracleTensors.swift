import Foundation
import SegKitTensor
import XCTest

/// Tensors made by one PyTorch oracle script, for a test class to compare against.
///
/// The script runs after a prelude that imports torch (with `nn`, `F`, numpy as `np`
/// and `math`), seeds it with 0 and defines `save(name, tensor_or_number)`,
/// `save_state(prefix, module)` (its state dict as `prefix/key`), `save_meta(dict)`
/// (any JSON, read back as `meta`), `load_inputs()` (the tensors passed as
/// `inputs`, by name) and `randomize_norm(model, affine=True)` (`Oracle.randomizeNorm`).
/// Each tensor travels as a raw little-endian file plus an entry in `index.json`
/// ({name: {dtype, shape, file}}); the Swift side keeps the bytes and builds a fresh
/// `Tensor` on every lookup, so tests may modify what they get.
public struct OracleTensors {
  private struct Entry: Decodable {
    let dtype: String
    let shape: [Int]
    let file: String
  }

  private let entries: [String: (dtype: DType, shape: [Int], bytes: Data)]
  /// What the script passed to `save_meta`, as JSONSerialization reads it.
  public let meta: [String: Any]

  private static let prelude = """
    import json, math, os, sys
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.manual_seed(0)
    _dir = sys.argv[1]
    _index = {}
    _meta = {}
    def save(name, value):
        t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
        t = t.detach().cpu().contiguous()
        file = f"{len(_index)}.bin"
        with open(os.path.join(_dir, file), "wb") as f:
            f.write(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        _index[name] = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape), "file": file}
        return value
    def save_state(prefix, module):
        for k, v in module.state_dict().items():
            save(prefix + "/" + k, v)
    def save_meta(values):
        _meta.update(values)
    def load_inputs():
        with open(os.path.join(sys.argv[2], "index.json")) as f:
            index = json.load(f)
        inputs = {}
        for name, e in index.items():
            with open(os.path.join(sys.argv[2], e["file"]), "rb") as f:
                data = bytearray(f.read())
            dtype = getattr(torch, e["dtype"])
            t = torch.frombuffer(data, dtype=dtype) if data else torch.empty(0, dtype=dtype)
            inputs[name] = t.reshape(e["shape"])
        return inputs
    \(Oracle.randomizeNorm)

    """

  private static let epilogue = """

    with open(os.path.join(_dir, 'index.json'), 'w') as f:
        json.dump(_index, f)
    with open(os.path.join(_dir, 'meta.json'), 'w') as f:
        json.dump(_meta, f)

    """

  /// Runs `script` in the oracle (a missing oracle fails the test: the test command
  /// installs it), with `inputs` readable there through `load_inputs()`.
  public static func run(_ script: String, inputs: [(String, Tensor)] = []) throws -> OracleTensors {
    let dir = try Oracle.temporaryDirectory("segkit-oracle")
    defer { try? FileManager.default.removeItem(at: dir) }
    let outputs = dir.appendingPathComponent("out"), inputFolder = dir.appendingPathComponent("in")
    try FileManager.default.createDirectory(at: outputs, withIntermediateDirectories: true)
    try write(inputs, to: inputFolder)
    try Oracle.run(prelude + script + epilogue, arguments: [outputs.path, inputFolder.path])
    let index = try JSONDecoder().decode(
      [String: Entry].self, from: Data(contentsOf: outputs.appendingPathComponent("index.json")))
    let meta = try JSONSerialization.jsonObject(with: Data(contentsOf: outputs.appendingPathComponent("meta.json")))
    let dtypes = Dictionary(uniqueKeysWithValues: DType.allCases.map { ($0.description, $0) })
    return OracleTensors(
      entries: try index.mapValues { entry in
        guard let dtype = dtypes[entry.dtype] else { throw TorchError("oracle saved an unknown dtype \(entry.dtype)") }
        return (dtype, entry.shape, try Data(contentsOf: outputs.appendingPathComponent(entry.file)))
      }, meta: meta as? [String: Any] ?? [:])
  }

  /// Writes `tensors` as the oracle's `load_inputs()` reads them.
  static func write(_ tensors: [(String, Tensor)], to folder: URL) throws {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    var index: [String: Any] = [:]
    for (position, (name, tensor)) in tensors.enumerated() {
      let file = "\(position).bin"
      try tensor.contiguous().data().write(to: folder.appendingPathComponent(file))
      index[name] = ["file": file, "shape": tensor.shape, "dtype": tensor.dtype.description]
    }
    try JSONSerialization.data(withJSONObject: index).write(to: folder.appendingPathComponent("index.json"))
  }

  public subscript(_ name: String) -> Tensor {
    get throws {
      guard let e = entries[name] else { throw TorchError("the oracle saved no tensor named '\(name)'") }
      return try e.bytes.withUnsafeBytes { try Tensor(bytes: $0, shape: e.shape, dtype: e.dtype) }
    }
  }

  /// The tensors saved under "prefix/" (e.g. by `save_state`), without the prefix, sorted by name.
  public func entries(under prefix: String) throws -> [(String, Tensor)] {
    try entries.keys.filter { $0.hasPrefix(prefix + "/") }.sorted()
      .map { (String($0.dropFirst(prefix.count + 1)), try self[$0]) }
  }

  /// Asserts that `actual` matches the saved tensor `name`: same shape and dtype,
  /// values within atol + rtol·|expected| for floating point, equal otherwise.
  public func expect(
    _ actual: Tensor, _ name: String, atol: Double = 1e-5, rtol: Double = 1e-5,
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    assertClose(actual, try self[name], atol: atol, rtol: rtol, name, file: file, line: line)
  }
}

/// Compares two tensors as `OracleTensors.expect` does; NaNs match NaNs.
public func assertClose(
  _ actual: Tensor, _ expected: Tensor, atol: Double = 1e-5, rtol: Double = 1e-5, _ label: String = "",
  file: StaticString = #filePath, line: UInt = #line
) {
  guard actual.shape == expected.shape, actual.dtype == expected.dtype else {
    XCTFail("\(label): got \(actual.dtype) \(actual.shape), expected \(expected.dtype) \(expected.shape)",
            file: file, line: line)
    return
  }
  do {
    let a = try actual.toArray(Double.self), e = try expected.toArray(Double.self)
    let exact = !expected.dtype.isFloatingPoint
    var worst: Int?, worstDiff = -1.0, mismatches = 0
    for i in a.indices where !(a[i].isNaN && e[i].isNaN) {
      let diff = Swift.abs(a[i] - e[i])
      guard a[i] != e[i], exact || !(diff <= atol + rtol * Swift.abs(e[i])) else { continue }
      mismatches += 1
      if !(diff <= worstDiff) { (worst, worstDiff) = (i, diff) }
    }
    if let worst {
      XCTFail("\(label): \(mismatches) of \(a.count) elements differ; worst at \(worst): \(a[worst]), expected \(e[worst])",
              file: file, line: line)
    }
  } catch {
    XCTFail("\(label): \(error)", file: file, line: line)
  }
}

extension XCTestCase {
  /// Fails unless `actual` and `expected` (the oracle's) have the same shape and values
  /// close as torch.allclose judges (dtypes may differ; nil fails as a missing tensor).
  public func assertMatchesOracle(
    _ actual: Tensor?, _ expected: Tensor, rtol: Double = 1e-4, atol: Double = 1e-5, _ message: String = "",
    file: StaticString = #filePath, line: UInt = #line
  ) throws {
    guard let actual else { return XCTFail("\(message): missing tensor", file: file, line: line) }
    XCTAssertEqual(actual.shape, expected.shape, "\(message): shape", file: file, line: line)
    guard actual.shape == expected.shape else { return }
    let a = try actual.to(dtype: .float64, device: .cpu), b = try expected.to(.float64)
    let close = try a.allClose(b, rtol: rtol, atol: atol)
    let worst = a.count == 0 ? 0 : try (a - b).abs().max().item()
    XCTAssertTrue(close, "\(message): max abs difference \(worst)", file: file, line: line)
  }
}
