import Foundation

/// MaskRNN's ablation (the paper's Table 1): the same weights read out four ways on a
/// DAVIS split (appearance stream, flow stream, both, both with the localiser), each
/// segmented into a folder of its own and scored as davis2017-evaluation does.
public enum MaskRNNAblation {
  /// The readouts, in the table's order, with their names.
  public static let parts: [(readout: MaskRNNSegmenter.Readout, name: String)] = [
    (.appearance, "appearance stream"), (.flow, "flow stream"), (.streams, "both streams"), (.full, "both + localisation"),
  ]

  public struct Row {
    public let name: String
    public let report: DAVISEvaluation.Report
    public let seconds: Double
    /// J&F, J and F means.
    public var jAndF: Double { report.global[0].value }
    public var j: Double { report.global[1].value }
    public var f: Double { report.global[4].value }
  }

  /// Segments and scores every readout of `parts` (all by default) into
  /// `folder`/<readout>/; a readout the weights cannot give (the localiser of weights
  /// without one) is reported through `skipped`.
  public static func run(
    _ network: MaskRNN, flow: MaskRNNFlowSource, device: Device, on dataset: VideoDataset, singleObject: Bool, into folder: URL,
    parts: [(readout: MaskRNNSegmenter.Readout, name: String)] = parts,
    skipped: (String) -> Void = { _ in }, finished: (Row) -> Void = { _ in }, shouldStop: @escaping () -> Bool = { false }
  ) throws -> [Row] {
    var rows: [Row] = []
    for part in parts {
      if part.readout == .full && network.localiser == nil {
        skipped(part.name)
        continue
      }
      let partFolder = folder.appendingPathComponent(part.readout.rawValue)
      let segmentation = DAVISSegmentation(makeSegmenterFor: { sequence in
        let segmenter = MaskRNNObjectsSegmenter(model: network, device: device, flow: flow.method, readout: part.readout)
        segmenter.exactFlows = flow.exactFlows(of: sequence.name)
        return segmenter
      })
      let start = Date()
      for sequence in dataset.sequences {
        _ = try segmentation.segment(sequence, singleObject: singleObject, into: partFolder, shouldStop: shouldStop)
      }
      let row = Row(name: part.name, report: try DAVISEvaluation.run(results: partFolder, dataset: dataset),
                    seconds: Date().timeIntervalSince(start))
      rows.append(row)
      finished(row)
    }
    return rows
  }

  /// The table: a row per readout; with `training` (how the rows' networks were
  /// trained, e.g. "separately trained") a last column says it on every row.
  public static func csv(_ rows: [Row], training: String? = nil) -> String {
    "Part,J&F-Mean,J-Mean,F-Mean" + (training == nil ? "" : ",Training") + "\n"
      + rows.map { "\($0.name)," + String(format: "%.4f,%.4f,%.4f", $0.jAndF, $0.j, $0.f) + (training.map { ",\($0)" } ?? "") }
      .joined(separator: "\n") + "\n"
  }
}
