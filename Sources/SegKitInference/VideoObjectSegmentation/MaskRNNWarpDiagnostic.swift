import Foundation

extension MaskRNNAblation {
  /// How much shape the flow carries on this data: J of each object's annotated mask of
  /// frame t−1 warped to frame t by the flow t → t−1 (as MaskRNN warps its previous
  /// mask), and J of that mask left where it was, both against the annotation of frame
  /// t. Each is averaged over frames 1… of an object, then over the objects of a
  /// sequence, then over the sequences. If warping barely beats not warping, the flow
  /// stream has no usable shape to read.
  public struct WarpDiagnostic: Codable, Sendable {
    public let warpedJ: Double
    public let unwarpedJ: Double
    public let sequences: Int
  }

  public static func warpDiagnostic(on dataset: VideoDataset, flow: MaskRNNFlowSource, singleObject: Bool) throws -> WarpDiagnostic {
    var warped: [Double] = [], unwarped: [Double] = []
    for sequence in dataset.sequences {
      let masks = try sequence.frames.map { frame -> Image in
        guard let url = frame.label?.url else { throw InferenceError("\(sequence.name): frame \(frame.name) has no annotation") }
        var mask = try ImageIO.readLabel(url)
        // DAVIS 2016's masks are one object, whatever their non-zero values (as DAVISSegmentation reads them).
        if singleObject { for i in mask.pixels.indices where mask.pixels[i] != 0 { mask.pixels[i] = voidLabel } }
        return mask
      }
      guard masks.count > 1, let first = masks.first else { continue }
      let exact = flow.exactFlows(of: sequence.name)
      let ids = ObjectMasks.ids(in: first)
      var sums = [(warped: Double, unwarped: Double)](repeating: (0, 0), count: ids.count)
      for t in 1..<masks.count {
        let backward = try exact?.backward(frame: t)
          ?? flow.method.compute(try ImageIO.read(sequence.frames[t].image), try ImageIO.read(sequence.frames[t - 1].image))
        for (k, id) in ids.enumerated() {
          let previous = ObjectMasks.object(id, of: masks[t - 1]), current = try binary(ObjectMasks.object(id, of: masks[t]))
          sums[k].warped += try DAVIS.regionSimilarity(prediction: binary(FlowWarp.warp(mask: previous, by: backward)), groundTruth: current)
          sums[k].unwarped += try DAVIS.regionSimilarity(prediction: binary(previous), groundTruth: current)
        }
      }
      guard !ids.isEmpty else { continue }
      let frames = Double(masks.count - 1), objects = Double(ids.count)
      warped.append(sums.map { $0.warped / frames }.reduce(0, +) / objects)
      unwarped.append(sums.map { $0.unwarped / frames }.reduce(0, +) / objects)
    }
    guard !warped.isEmpty else { throw InferenceError("no sequence of two annotated frames or more to measure the flow's warp on") }
    let count = Double(warped.count)
    return WarpDiagnostic(warpedJ: warped.reduce(0, +) / count, unwarpedJ: unwarped.reduce(0, +) / count, sequences: warped.count)
  }

  private static func binary(_ mask: Image) throws -> BinaryMask {
    try BinaryMask(height: mask.height, width: mask.width, values: mask.pixels)
  }

  /// The diagnostic as a table.
  public static func csv(_ diagnostic: WarpDiagnostic) -> String {
    "Previous annotated mask,J-Mean\n" + String(format: "warped by the flow,%.4f\nunwarped,%.4f\n", diagnostic.warpedJ, diagnostic.unwarpedJ)
  }

  /// The ablation's rows and the diagnostic, unrounded, as JSON.
  public static func json(_ rows: [Row], diagnostic: WarpDiagnostic, training: String? = nil) throws -> Data {
    struct Part: Codable { let name: String; let jAndF, j, f, seconds: Double }
    struct Report: Codable { let parts: [Part]; let flowWarp: WarpDiagnostic; let training: String? }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    encoder.keyEncodingStrategy = .convertToSnakeCase
    return try encoder.encode(Report(
      parts: rows.map { Part(name: $0.name, jAndF: $0.jAndF, j: $0.j, f: $0.f, seconds: $0.seconds) }, flowWarp: diagnostic,
      training: training))
  }
}
