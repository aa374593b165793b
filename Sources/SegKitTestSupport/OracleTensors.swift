import Foundation
import SegKitTensor
import XCTest

/// Tensors made by one PyTorch oracle script, for a test class to compare against.
///
/// The script runs after a prelude that imports torch (and `F`), seeds it with 0
/// and defines `save(name, tensor_or_number)`. Each saved tensor travels as a raw
/// little-endian file plus an entry in `index.json` ({name: {dtype, shape, file}});
/// the Swift side keeps the bytes and builds a fresh `Tensor` on every lookup, so
/// tests may modify what they get.
public struct OracleTensors {
  private struct Entry: Decodable {
    let dtype: String
    let shape: [Int]
    let file: String
  }

  private let entries: [String: (dtype: DType, shape: [Int], bytes: Data)]

  private static let prelude = """
    import json, os, sys
    import torch
    import torch.nn.functional as F
    torch.manual_seed(0)
    _dir = sys.argv[1]
    _index = {}
    def save(name, value):
        t = value if isinstance(value, torch.Tensor) else torch.tensor(value)
        t = t.detach().cpu().contiguous()
        file = f"{len(_index)}.bin"
        with open(os.path.join(_dir, file), "wb") as f:
            f.write(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        _index[name] = {"dtype": str(t.dtype).removeprefix("torch."), "shape": list(t.shape), "file": file}
        return value

    """

  /// Runs `script` in the oracle (a missing oracle fails the test: the test command installs it).
  public static func run(_ script: String) throws -> OracleTensors {
    let dir = try Oracle.temporaryDirectory("segkit-oracle")
    defer { try? FileManager.default.removeItem(at: dir) }
    let epilogue = "\nwith open(os.path.join(_dir, 'index.json'), 'w') as f:\n    json.dump(_index, f)\n"
    try Oracle.run(prelude + script + epilogue, arguments: [dir.path])
    let index = try JSONDecoder().decode(
      [String: Entry].self, from: Data(contentsOf: dir.appendingPathComponent("index.json")))
    let dtypes = Dictionary(uniqueKeysWithValues: DType.allCases.map { ($0.description, $0) })
    return OracleTensors(entries: try index.mapValues { entry in
      guard let dtype = dtypes[entry.dtype] else { throw TorchError("oracle saved an unknown dtype \(entry.dtype)") }
      return (dtype, entry.shape, try Data(contentsOf: dir.appendingPathComponent(entry.file)))
    })
  }

  public subscript(_ name: String) -> Tensor {
    get throws {
      guard let e = entries[name] else { throw TorchError("the oracle saved no tensor named '\(name)'") }
      return try e.bytes.withUnsafeBytes { try Tensor(bytes: $0, shape: e.shape, dtype: e.dtype) }
    }
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
