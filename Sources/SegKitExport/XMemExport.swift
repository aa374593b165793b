import Foundation
import SegKitModels
import SegKitNN
import SegKitTensor

/// XMem's three per-frame networks as ONNX models; the memory between them (what is
/// kept, the top-k readout, consolidation) stays with the program that runs them, as
/// in XMem's own inference loop.
public struct XMemONNXModels {
  /// `image` [1, 3, H, W] (normalised) → `key`, `shrinkage`, `selection` [1, C, h, w] and
  /// the features `f16`, `f8`, `f4` at strides 16, 8, 4.
  public var key: Onnx_ModelProto
  /// `image`, `f16`, `masks` [1, O, H, W], `hidden` [1, O, C^h, h, w] → `value`
  /// [1, O, C^v, h, w] and the deep-updated `hidden_out` (no hidden input or output
  /// without a hidden state).
  public var value: Onnx_ModelProto
  /// `f16`, `f8`, `f4`, `readout` [1, O, C^v, h, w], `hidden` → `hidden_out`, `logits`
  /// and `probabilities` [1, 1 + O, H, W] (background first, soft aggregation).
  public var decoder: Onnx_ModelProto
}

extension ONNXExport {
  /// XMem's key encoder with its projection, value encoder and decoder, recorded in
  /// inference mode for frames of `height` × `width` (multiples of 16) and `objects` objects.
  public static func xmemModels(of network: XMem, height: Int, width: Int, objects: Int, opset: Int = 17,
                                metadata: [String: String] = [:]) throws -> XMemONNXModels {
    guard (16...4096).contains(height), (16...4096).contains(width), height % 16 == 0, width % 16 == 0 else {
      throw ExportError("XMem's export needs a frame size of multiples of 16 from 16 to 4096, got \(height)×\(width)")
    }
    guard (1...64).contains(objects) else { throw ExportError("XMem's export takes 1 to 64 objects, got \(objects)") }
    network.eval()
    let (h, w) = (height / 16, width / 16)
    let image = try Tensor.randn([1, 3, height, width])
    let keyRecording = try record(inputs: [image]) { inputs in
      let encoded = try network.encodeKey(inputs[0])
      return [encoded.key, try encoded.shrinkage.unwrap("shrinkage"), try encoded.selection.unwrap("selection"),
              encoded.features.f16, encoded.features.f8, encoded.features.f4]
    }
    let features = try Torch.withInferenceMode { try network.encodeKey(image).features }
    let hiddenChannels = network.dimensions.hidden
    let hidden = hiddenChannels > 0 ? try Tensor.randn([1, objects, hiddenChannels, h, w]) : nil
    let masks = try Tensor.rand([1, objects, height, width])
    let valueRecording = try record(inputs: [image, features.f16, masks] + (hidden.map { [$0] } ?? [])) { inputs in
      let encoded = try network.encodeValue(frame: inputs[0], f16: inputs[1], hidden: inputs.count > 3 ? inputs[3] : nil, masks: inputs[2])
      return [encoded.value] + (encoded.hidden.map { [$0] } ?? [])
    }
    let readout = try Tensor.randn([1, objects, network.dimensions.value, h, w])
    let decoderRecording = try record(inputs: [features.f16, features.f8, features.f4, readout] + (hidden.map { [$0] } ?? [])) { inputs in
      let decoded = try network.segment(features: (inputs[0], inputs[1], inputs[2]), readout: inputs[3],
                                        hidden: inputs.count > 4 ? inputs[4] : nil)
      return (decoded.hidden.map { [$0] } ?? []) + [decoded.logits, decoded.probabilities]
    }
    let hiddenName = hidden == nil ? [String]() : ["hidden"], hiddenOut = hidden == nil ? [String]() : ["hidden_out"]
    var meta = metadata
    meta["model"] = meta["model"] ?? "xmem"
    meta["objects"] = "\(objects)"
    return XMemONNXModels(
      key: try write([keyRecording], inputNames: ["image"], outputNames: ["key", "shrinkage", "selection", "f16", "f8", "f4"],
                     network: network, opset: opset, metadata: meta),
      value: try write([valueRecording], inputNames: ["image", "f16", "masks"] + hiddenName, outputNames: ["value"] + hiddenOut,
                       network: network, opset: opset, metadata: meta),
      decoder: try write([decoderRecording], inputNames: ["f16", "f8", "f4", "readout"] + hiddenName,
                         outputNames: hiddenOut + ["logits", "probabilities"], network: network, opset: opset, metadata: meta))
  }
}

extension Optional where Wrapped == Tensor {
  fileprivate func unwrap(_ name: String) throws -> Tensor {
    guard let self else { throw ExportError("XMem's key projection gave no \(name)") }
    return self
  }
}
