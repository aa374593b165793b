import Foundation
import SegKitNN
import SegKitTestSupport
import XCTest

/// Tensors passed between these tests and the Python oracle: a folder of raw
/// little-endian .bin files plus index.json, {"tensors": {name: {file, shape, dtype}},
/// "meta": any JSON}. Python reads inputs from sys.argv[1] and writes to sys.argv[2].
struct NNTensorExchange {
  struct Problem: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
  }

  var tensors: [String: Tensor]
  var meta: [String: Any]

  /// Python helpers every oracle script starts with: `Exchange(folder)` with `put`,
  /// `put_state` and `close(meta)`, and `read_exchange(folder)`.
  static let pythonPrelude = """
    import json, os, sys, math
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
    torch.set_num_threads(2)
    _NAMES = {torch.float32: 'float32', torch.float64: 'float64', torch.int64: 'int64', torch.int32: 'int32',
              torch.uint8: 'uint8', torch.bool: 'bool'}
    _DTYPES = {v: k for k, v in _NAMES.items()}
    class Exchange:
        def __init__(self, folder):
            self.folder, self.index = folder, {}
        def put(self, name, t):
            t = t.detach().contiguous().cpu()
            file = 't%d.bin' % len(self.index)
            array = t.numpy()
            with open(os.path.join(self.folder, file), 'wb') as f:
                f.write(array.astype(array.dtype.newbyteorder('<')).tobytes())
            self.index[name] = {'file': file, 'shape': list(t.shape), 'dtype': _NAMES[t.dtype]}
        def put_state(self, prefix, module):
            for k, v in module.state_dict().items():
                self.put(prefix + '/' + k, v)
        def close(self, meta=None):
            with open(os.path.join(self.folder, 'index.json'), 'w') as f:
                json.dump({'tensors': self.index, 'meta': meta or {}}, f)
    def read_exchange(folder):
        with open(os.path.join(folder, 'index.json')) as f:
            index = json.load(f)['tensors']
        out = {}
        for name, e in index.items():
            dtype = _DTYPES[e['dtype']]
            data = np.fromfile(os.path.join(folder, e['file']), dtype=torch.empty(0, dtype=dtype).numpy().dtype)
            out[name] = torch.from_numpy(data.copy()).reshape(e['shape'])
        return out
    out = Exchange(sys.argv[2])

    """

  /// Runs `script` (after the prelude) with `inputs` available through read_exchange(sys.argv[1]).
  static func runOracle(_ script: String, inputs: [(String, Tensor)] = []) throws -> NNTensorExchange {
    let folder = try Oracle.temporaryDirectory("segkit-nn")
    defer { try? FileManager.default.removeItem(at: folder) }
    let inputFolder = folder.appendingPathComponent("in"), outputFolder = folder.appendingPathComponent("out")
    try FileManager.default.createDirectory(at: outputFolder, withIntermediateDirectories: true)
    try write(inputs, to: inputFolder)
    try Oracle.run(pythonPrelude + script, arguments: [inputFolder.path, outputFolder.path])
    return try read(outputFolder)
  }

  static func write(_ tensors: [(String, Tensor)], to folder: URL) throws {
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    var index: [String: Any] = [:]
    for (position, (name, tensor)) in tensors.enumerated() {
      let file = "t\(position).bin"
      try tensor.contiguous().data().write(to: folder.appendingPathComponent(file))
      index[name] = ["file": file, "shape": tensor.shape, "dtype": tensor.dtype.description]
    }
    let json = try JSONSerialization.data(withJSONObject: ["tensors": index, "meta": [:] as [String: Any]])
    try json.write(to: folder.appendingPathComponent("index.json"))
  }

  static func read(_ folder: URL) throws -> NNTensorExchange {
    let json = try Data(contentsOf: folder.appendingPathComponent("index.json"))
    guard let root = try JSONSerialization.jsonObject(with: json) as? [String: Any],
      let index = root["tensors"] as? [String: [String: Any]]
    else { throw Problem("index.json is malformed") }
    var tensors: [String: Tensor] = [:]
    for (name, entry) in index {
      guard let file = entry["file"] as? String, let shape = entry["shape"] as? [Int],
        let dtypeName = entry["dtype"] as? String,
        let dtype = DType.allCases.first(where: { $0.description == dtypeName })
      else { throw Problem("index.json: bad entry for \(name)") }
      let bytes = try Data(contentsOf: folder.appendingPathComponent(file))
      tensors[name] = try bytes.withUnsafeBytes { try Tensor(bytes: $0, shape: shape, dtype: dtype) }
    }
    return NNTensorExchange(tensors: tensors, meta: root["meta"] as? [String: Any] ?? [:])
  }

  subscript(_ name: String) -> Tensor {
    get throws {
      guard let tensor = tensors[name] else { throw Problem("the oracle wrote no tensor '\(name)'") }
      return tensor
    }
  }

  /// The entries under "prefix/", with the prefix removed, sorted by name.
  func entries(under prefix: String) -> [(String, Tensor)] {
    tensors.filter { $0.key.hasPrefix(prefix + "/") }
      .map { (String($0.key.dropFirst(prefix.count + 1)), $0.value) }
      .sorted { $0.0 < $1.0 }
  }
}

extension XCTestCase {
  /// Fails unless `actual` and `expected` (the oracle's) have the same shape and close values.
  func assertMatchesOracle(
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
