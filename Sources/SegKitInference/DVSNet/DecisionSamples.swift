import Foundation

/// Decision-network samples: the flow network's features for (current frame, key
/// frame) pairs and the warp path's confidence score (percent) on the current frame;
/// DVSNet's X and Y files, as one safetensors file (`features` [N, C, h, w],
/// `scores` [N], `distances` [N], the frames between key and current). The metadata
/// names the segmentation network the scores were measured against and the flow
/// layer the features come from: a decision network predicts for that pair only.
public struct DecisionSamples {
  public var features: Tensor
  public var scores: Tensor
  public var distances: Tensor
  public var segmentation: SegmentationIdentity?
  public var featureLayer: FlowNetS.FeatureLayer?

  public var count: Int { scores.shape.first ?? 0 }

  public init(features: Tensor, scores: Tensor, distances: Tensor) throws {
    guard features.rank == 4, scores.rank == 1, distances.rank == 1, features.shape[0] == scores.shape[0],
          distances.shape[0] == scores.shape[0], features.shape.dropFirst().allSatisfy({ $0 >= 1 }) else {
      throw InferenceError("decision samples need [N, C, h, w] features with N scores and distances; got \(features.shape), \(scores.shape), \(distances.shape)")
    }
    self.features = features
    self.scores = scores
    self.distances = distances
  }

  public func write(to url: URL) throws {
    var metadata = segmentation?.metadata ?? [:]
    metadata["format"] = "segkit-decision-samples"
    metadata["feature_layer"] = featureLayer?.rawValue
    try SafeTensors.write(try StateDict([("features", features), ("scores", scores), ("distances", distances)]),
                          metadata: metadata, to: url)
  }

  public static func read(_ url: URL) throws -> DecisionSamples {
    let (state, metadata): (StateDict, [String: String])
    do { (state, metadata) = try SafeTensors.read(contentsOf: url) } catch {
      throw InferenceError("\(url.path): cannot read decision samples (\(error))")
    }
    guard let features = state["features"], let scores = state["scores"], let distances = state["distances"] else {
      throw InferenceError("\(url.path): not a decision-sample file (it needs features, scores and distances; `segkit dvs features` writes them)")
    }
    do {
      var samples = try DecisionSamples(features: features.to(.float32), scores: scores.to(.float32), distances: distances.to(.float32))
      samples.segmentation = SegmentationIdentity(metadata: metadata)
      samples.featureLayer = metadata["feature_layer"].flatMap(FlowNetS.FeatureLayer.init(rawValue:))
      return samples
    } catch {
      throw InferenceError("\(url.path): \(error)")
    }
  }

  /// DVSNet's training data from `snippets`: in each snippet, frames from the last back
  /// to `maxDistance` in steps of `stride` are current frames, each paired with the keys
  /// 0 … `maxDistance` frames before it; per pair and region the flow network's features
  /// and the warp path's confidence score (regions without a score are left out).
  /// `progress(done, samples)` follows the snippets; a stop request ends with StoppedOnRequest.
  public static func collect(
    from snippets: VideoSnippets, segmenter: DynamicKeyFrameSegmenter, maxDistance: Int, stride: Int,
    progress: (Int, Int) -> Void = { _, _ in }, shouldStop: () -> Bool = { false }
  ) throws -> DecisionSamples {
    guard maxDistance >= 0, stride >= 1 else { throw InferenceError("decision samples need a key distance of 0 or more and a stride of 1 or more") }
    var features: [Tensor] = [], scores: [Float] = [], distances: [Float] = []
    var layer: FlowNetS.FeatureLayer?
    for (index, snippet) in snippets.snippets.enumerated() {
      if shouldStop() { throw StoppedOnRequest() }
      let frames = try snippet.frames.map { try ImageIO.read($0) }
      let regions = try segmenter.grid.regions(height: frames[0].height, width: frames[0].width)
      let layers = Set(regions.map { segmenter.resolvedFeatureLayer(regionSize: Size2($0.height, $0.width)) })
      guard layers.count == 1, layer == nil || layers.first == layer else {
        throw InferenceError("\(snippet.name): its regions would give the decision network features of different layers (\(layers.map(\.rawValue).sorted().joined(separator: ", "))); use frames of one size or pass a feature layer")
      }
      layer = layers.first
      for current in Swift.stride(from: frames.count - 1, through: maxDistance, by: -stride) {
        let keys = (0...maxDistance).map { frames[current - $0] }
        for (distance, samplesOfKey) in try segmenter.decisionSamples(current: frames[current], keys: keys).enumerated() {
          for sample in samplesOfKey {
            guard let score = sample.score else { continue }
            features.append(sample.features)
            scores.append(Float(score))
            distances.append(Float(distance))
          }
        }
      }
      progress(index + 1, scores.count)
    }
    guard !scores.isEmpty else {
      throw InferenceError("no decision samples: every snippet has fewer than \(maxDistance + 1) frames (the largest key distance + 1)")
    }
    var samples = try DecisionSamples(
      features: try Tensor.cat(features, dim: 0), scores: try Tensor(scores, shape: [scores.count]),
      distances: try Tensor(distances, shape: [distances.count]))
    samples.featureLayer = layer
    return samples
  }

  /// The largest stride (at most 5) at which `collect` gives at least `count` samples
  /// from `snippets` (1 when none does): current frames run from each snippet's last back
  /// to `maxDistance`, each with `maxDistance` + 1 keys, in every region.
  public static func stride(toReach count: Int, in snippets: VideoSnippets, maxDistance: Int, grid: RegionGrid) throws -> Int {
    let regions = grid.rows * grid.columns
    for stride in Swift.stride(from: 5, through: 2, by: -1) {
      let currents = snippets.snippets.reduce(0) { total, snippet in
        let last = snippet.frames.count - 1
        return total + (last >= maxDistance ? (last - maxDistance) / stride + 1 : 0)
      }
      if currents * (maxDistance + 1) * regions >= count { return stride }
    }
    return 1
  }

  /// Percentiles (0…100) of the scores: the targets a sweep compares at.
  public func scorePercentiles(_ percentiles: [Double]) throws -> [Double] {
    let sorted = try scores.toArray(Float.self).map(Double.init).sorted()
    guard !sorted.isEmpty else { return [] }
    return percentiles.map { sorted[min(sorted.count - 1, Int(($0 / 100 * Double(sorted.count - 1)).rounded()))] }
  }

  /// The mean confidence score at each key distance that has samples.
  public func meanScoreByDistance() throws -> [(distance: Int, mean: Double)] {
    let scores = try self.scores.toArray(Float.self), distances = try self.distances.toArray(Float.self)
    var sums: [Int: (Double, Int)] = [:]
    for (score, distance) in zip(scores, distances) {
      let d = Int(distance)
      sums[d, default: (0, 0)].0 += Double(score)
      sums[d, default: (0, 0)].1 += 1
    }
    return sums.keys.sorted().map { (distance: $0, mean: sums[$0]!.0 / Double(sums[$0]!.1)) }
  }
}
