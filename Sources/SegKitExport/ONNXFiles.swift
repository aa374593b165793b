import Foundation
import SegKitInference

/// Whole ONNX files, checked for memory before they are built: a segmentation model
/// with the manifest as metadata (what a runtime needs to prepare inputs and name
/// outputs), a flow network, a decision network.
public enum ONNXFiles {
  /// The manifest as `metadata_props`: the model, its classes, names and colours, and
  /// how inputs are normalised.
  public static func metadata(of manifest: ModelManifest, producer: String) -> [String: String] {
    let normalization = manifest.normalization
    return [
      "model": manifest.model,
      "classes": String(manifest.classes),
      "class_names": manifest.classNames.joined(separator: ","),
      "normalization_mean": normalization.mean.map { String($0) }.joined(separator: ","),
      "normalization_std": normalization.std.map { String($0) }.joined(separator: ","),
      "normalization_pixel_divisor": String(normalization.pixelDivisor),
      "channel_order": normalization.channelOrder.rawValue,
      "colors": manifest.colors.map { $0.map(String.init).joined(separator: " ") }.joined(separator: ","),
      "producer": producer,
    ]
  }

  /// A segmentation network as the bytes of an ONNX file.
  public static func segmentation(
    _ network: any SegmentationNetwork, manifest: ModelManifest, options: ONNXExportOptions, producer: String
  ) throws -> Data {
    try ONNXExport.checkMemory(at: Size2(options.height, options.width), openSizes: options.openSizes, what: manifest.model) { size in
      var probe = options
      (probe.height, probe.width, probe.openSizes) = (size.height, size.width, false)
      return try ONNXExport.model(of: network, options: probe, normalization: manifest.normalization)
    }
    return try ONNXExport.model(of: network, options: options, normalization: manifest.normalization,
                                metadata: metadata(of: manifest, producer: producer)).serializedData()
  }

  /// A flow network: inputs `first` and `second` (RGB 0…255), outputs `flow`, `features` and `scale`.
  public static func flow(
    _ network: FlowNetS, name: String, size: Size2, opset: Int, openSizes: Bool, producer: String
  ) throws -> Data {
    try ONNXExport.checkMemory(at: size, openSizes: openSizes, what: name) { probe in
      try ONNXExport.flowModel(of: network, height: probe.height, width: probe.width, opset: opset)
    }
    return try ONNXExport.flowModel(of: network, height: size.height, width: size.width, opset: opset, openSizes: openSizes,
                                    metadata: ["model": name, "producer": producer]).serializedData()
  }

  /// A decision network: input `features` (the flow network's conv6_1), output `score`.
  public static func decision(_ network: DecisionNetwork, featureSize: Size2, opset: Int, openSizes: Bool, producer: String) throws -> Data {
    try ONNXExport.checkMemory(at: featureSize, openSizes: openSizes, what: "the decision network") { probe in
      try ONNXExport.decisionModel(of: network, featureSize: probe, opset: opset)
    }
    return try ONNXExport.decisionModel(
      of: network, featureSize: featureSize, opset: opset, openSizes: openSizes,
      metadata: ["model": "dvsnet_decision", "grid": "\(network.grid.height)x\(network.grid.width)", "producer": producer]
    ).serializedData()
  }

  /// XMem's three per-frame networks (`xmemModels`), each with its part's name: key, value, decoder.
  public static func xmem(_ network: XMem, size: Size2, objects: Int, opset: Int, producer: String) throws -> [(part: String, data: Data)] {
    try ONNXExport.checkMemory(at: size, openSizes: false, what: "XMem") { probe in
      try ONNXExport.xmemModels(of: network, height: max(16, probe.height / 16 * 16), width: max(16, probe.width / 16 * 16), objects: objects).key
    }
    let models = try ONNXExport.xmemModels(of: network, height: size.height, width: size.width, objects: objects, opset: opset,
                                           metadata: ["model": "xmem", "producer": producer])
    return [("key", try models.key.serializedData()), ("value", try models.value.serializedData()),
            ("decoder", try models.decoder.serializedData())]
  }
}
