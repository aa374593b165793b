import Foundation
import SegKitTensor

/// PyTorch models the oracle builds itself, written from their descriptions, for
/// parity tests of more than one target.
public enum OracleModels {
  /// OSVOS (class `OracleOSVOS(in_channels=3, encoder="vgg16")`, also over
  /// "resnet18"), written from its description in Benchmarks/python/osvos_reference.py,
  /// which the fine-tuning benchmark shares; `forward` returns [fuse, side2…side5].
  public static func osvos() throws -> String {
    let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("Benchmarks/python/osvos_reference.py")
    do { return try String(contentsOf: file, encoding: .utf8) } catch {
      throw Oracle.Failure(description: "\(file.path): the oracle's OSVOS cannot be read (\(error))")
    }
  }

  /// XMem (`OracleXMem`, `OracleXMemProcessor`, `preprocess`, `randomize(model, seed)`, …),
  /// written from XMem's definitions in Benchmarks/python/xmem_reference.py, which the
  /// speed benchmark shares.
  public static func xmem() throws -> String { try benchmarkScript("xmem_reference.py") }

  static func benchmarkScript(_ name: String) throws -> String {
    let file = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("Benchmarks/python/\(name)")
    do { return try String(contentsOf: file, encoding: .utf8) } catch {
      throw Oracle.Failure(description: "\(file.path): the oracle's model cannot be read (\(error))")
    }
  }

  /// Redraws a state dict's entries (all but those `keep` names) from N(0, 2 / fan-in):
  /// OSVOS's own N(0, 0.001) initialisation makes its outputs vanish, which would let
  /// any parity test pass.
  public static func drawOrdinaryWeights(_ entries: [(String, Tensor)], keep: (String) -> Bool) throws {
    try Torch.withNoGrad {
      for (name, tensor) in entries where !keep(name) {
        let fanIn = tensor.rank == 4 ? tensor.shape[1] * tensor.shape[2] * tensor.shape[3] : 64
        try tensor.copy_(try Tensor.randn(tensor.shape) * (2 / Double(fanIn)).squareRoot())
      }
    }
  }
}
