import Foundation

/// A decision network's weights file: its state dict (safetensors) with the feature
/// channels and the grid in the metadata, which its shapes alone do not determine, and
/// what its samples came from: the segmentation network, the flow layer, and the
/// percentiles of their scores (the targets a sweep compares at).
public enum DecisionNetworkFile {
  /// What a decision network was trained for.
  public struct Info: Sendable, Equatable {
    public var segmentation: SegmentationIdentity?
    public var featureLayer: FlowNetS.FeatureLayer?
    /// Percentile (0…100) → score of the training samples.
    public var scorePercentiles: [(percentile: Double, score: Double)] = []

    public init(segmentation: SegmentationIdentity? = nil, featureLayer: FlowNetS.FeatureLayer? = nil,
                scorePercentiles: [(percentile: Double, score: Double)] = []) {
      (self.segmentation, self.featureLayer, self.scorePercentiles) = (segmentation, featureLayer, scorePercentiles)
    }

    public static func == (a: Info, b: Info) -> Bool {
      a.segmentation == b.segmentation && a.featureLayer == b.featureLayer
        && a.scorePercentiles.map(\.percentile) == b.scorePercentiles.map(\.percentile)
        && a.scorePercentiles.map(\.score) == b.scorePercentiles.map(\.score)
    }

    var metadata: [String: String] {
      var entries = segmentation?.metadata ?? [:]
      entries["feature_layer"] = featureLayer?.rawValue
      if !scorePercentiles.isEmpty {
        entries["score_percentiles"] = scorePercentiles.map { String(format: "%g:%.4f", $0.percentile, $0.score) }.joined(separator: ",")
      }
      return entries
    }

    init(metadata: [String: String]) {
      segmentation = SegmentationIdentity(metadata: metadata)
      featureLayer = metadata["feature_layer"].flatMap(FlowNetS.FeatureLayer.init(rawValue:))
      // A file's metadata is not trusted to size the sweep: at most 100 percentiles in 0…100.
      scorePercentiles = Array((metadata["score_percentiles"] ?? "").split(separator: ",").prefix(100).compactMap { pair in
        let parts = pair.split(separator: ":").compactMap { Double($0) }
        return parts.count == 2 && parts.allSatisfy(\.isFinite) && (0...100).contains(parts[0]) ? (parts[0], parts[1]) : nil
      })
    }
  }

  public static func write(_ network: DecisionNetwork, to url: URL, info: Info = Info(), metadata: [String: String] = [:]) throws {
    var entries = metadata.merging(info.metadata) { $1 }
    entries["model"] = "dvsnet_decision"
    entries["feature_channels"] = String(network.featureChannels)
    entries["grid"] = "\(network.grid.height)x\(network.grid.width)"
    try SafeTensors.write(try StateDict(try network.stateDict()), metadata: entries, to: url)
  }

  public static func read(_ url: URL) throws -> DecisionNetwork {
    try readWithInfo(url).network
  }

  public static func readWithInfo(_ url: URL) throws -> (network: DecisionNetwork, info: Info) {
    let (state, metadata): (StateDict, [String: String])
    do { (state, metadata) = try SafeTensors.read(contentsOf: url) } catch {
      throw InferenceError("\(url.path): cannot read the decision network (\(error))")
    }
    let grid = metadata["grid"]?.split(separator: "x").compactMap { Int($0) } ?? []
    guard metadata["model"] == "dvsnet_decision", let channels = metadata["feature_channels"].flatMap(Int.init),
          (1...4096).contains(channels), grid.count == 2, grid.allSatisfy({ (1...64).contains($0) }) else {
      throw InferenceError("\(url.path): not a decision network written by `segkit dvs train-decision` (its metadata lacks model, feature_channels or grid)")
    }
    // The file's own shapes must agree before the network is built, so that a small
    // file cannot declare a network larger than itself.
    let expected = DecisionNetwork.parameterShapes(featureChannels: channels, grid: Size2(grid[0], grid[1]))
    for (name, shape) in expected where state[name]?.shape != shape {
      throw InferenceError("\(url.path): \(name) should be \(shape) for \(channels) channels and a \(grid[0])×\(grid[1]) grid, found \(state[name].map { "\($0.shape)" } ?? "nothing")")
    }
    let network = try DecisionNetwork(featureChannels: channels, grid: Size2(grid[0], grid[1]))
    do { try network.loadStateDict(state) } catch {
      throw InferenceError("\(url.path): the weights do not fit a decision network on \(channels) channels and a \(grid[0])×\(grid[1]) grid (\(error))")
    }
    network.eval()
    return (network, Info(metadata: metadata))
  }
}
