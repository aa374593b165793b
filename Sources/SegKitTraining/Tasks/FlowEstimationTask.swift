import Foundation

/// Optical flow: a FlowNetS (`flownet2s`, `flownets_thin`) trained in one of two ways.
///
/// - On frame pairs with their true flow (dataset flying_chairs; `segkit data synth
///   --kind flow` makes synthetic ones): FlowNet's multi-scale end-point error, scored
///   on the validation pairs by the end-point error at full resolution, beside the
///   error of predicting no motion at all.
/// - As DVSNet's flow path (dataset cityscapes or camvid, video snippets; `segmentation_run`):
///   the frozen segmentation network's logits on a key frame, warped by the flow from
///   the current frame to the key and multiplied by the network's per-class scale
///   field, against that network's own labels on the current frame (cross-entropy).
///   No flow ground truth is needed; validation reports how many pixels the warp path
///   labels as the segmentation path does (DVSNet's confidence score).
public final class FlowEstimationTask: TrainingTask {
  public let config: TrainingConfig
  public let network: FlowNetS
  public let device: Device
  public let trainLoader: DataLoader
  let validation: (any SampleSource)?
  let teacher: Teacher?

  /// The frozen segmentation network of warp-path training.
  struct Teacher {
    let network: any SegmentationNetwork
    let mean: Tensor, std: Tensor, pixelDivisor: Double
    let resolution: WarpPath.Resolution
    let validation: VideoSnippets?

    /// Logits of frames given as 0…255 RGB.
    func logits(_ pixels: Tensor) throws -> Tensor {
      try Torch.withNoGrad { try network(((pixels / pixelDivisor) - mean) / std).out }
    }
  }

  public var model: Module { network }
  public var summary: String {
    "\(config.model.name) (\(network.trainableParameterCount) trainable parameters, optical flow) on \(device); \(trainLoader.source.count) training pairs"
  }

  /// Frames reach the network as 0…255 RGB; FlowNetS normalises its own input.
  static let rawPixels = InputNormalization(mean: [0, 0, 0], std: [1, 1, 1], pixelDivisor: 1)

  public init(config: TrainingConfig, device: Device, role: ProcessRole = .single) throws {
    guard let widths = ModelFamily(name: config.model.name)?.flowWidths else {
      throw TrainingError("'model' \(config.model.name) is not a flow network (\(ModelZoo.flowNetworkNames.joined(separator: ", ")))")
    }
    guard let datasetDir = config.data.datasetDir else {
      throw TrainingError("'dataset_dir' is not set: name the folder of the flying_chairs dataset")
    }
    func open(_ split: String) throws -> FlowPairs {
      do { return try FlowPairs.flyingChairs(root: URL(fileURLWithPath: datasetDir), split: split) } catch {
        throw TrainingError("cannot open the \(split) split of flying_chairs at \(datasetDir): \(error)")
      }
    }
    let trainSet: any SampleSource
    if VideoSnippets.datasetNames.contains(config.data.dataset) {
      let teacher = try Self.teacher(config, datasetDir: datasetDir, device: device)
      self.teacher = teacher
      do {
        trainSet = try KeyFramePairs(try VideoSnippets.named(config.data.dataset, root: URL(fileURLWithPath: datasetDir), split: config.data.trainSplit),
                                     maximumDistance: config.flow.maximumKeyDistance)
      } catch {
        throw TrainingError("cannot open the \(config.data.trainSplit) sequences of \(config.data.dataset) at \(datasetDir): \(error)")
      }
    } else {
      teacher = nil
      trainSet = try open(config.data.trainSplit)
    }
    Torch.manualSeed(UInt64(config.run.seed))
    // The warp path multiplies the warped logits by a per-class scale field.
    network = try FlowNetS(widths: widths, scaleClasses: teacher?.network.classes)
    if let path = config.initialization.initialCheckpoint {
      do {
        let state = try StateDict.load(contentsOf: URL(fileURLWithPath: path))
        // A SegKit checkpoint also holds its optimizer's state; a flow network trained on
        // true flow has no scale field yet, which then starts as the identity.
        let report = try network.loadStateDict(state, strict: false, rename: { $0.hasPrefix(Checkpoint.optimizerPrefix) ? nil : $0 })
        let missing = report.missing.filter { !$0.hasPrefix("predict_scale.") }
        guard missing.isEmpty, report.unexpected.isEmpty else {
          throw TrainingError("missing \(missing.prefix(5).joined(separator: ", ")); unexpected \(report.unexpected.prefix(5).joined(separator: ", "))")
        }
      } catch {
        throw TrainingError("initial_checkpoint \(path) does not fit \(config.model.name): \(error)")
      }
    }
    try network.to(device: device)
    network.train()
    let augmentation = config.trainingAugmentation(normalization: Self.rawPixels)
    trainLoader = try DataLoader(
      source: trainSet, augmentation: augmentation,
      options: LoaderOptions(batchSize: config.input.trainBatchSize, shuffle: config.input.shuffle, seed: UInt64(config.run.seed),
                             dropLast: true, workers: config.run.workers, prefetch: 2 * max(1, config.run.workers),
                             rank: role.rank, worldSize: role.worldSize))
    guard trainLoader.stepsPerEpoch > 0 else {
      throw TrainingError("the \(config.data.trainSplit) split has \(trainSet.count) pairs, fewer than one batch (train_batch_size \(config.input.trainBatchSize)) per process")
    }
    if config.data.valSplit.isEmpty || teacher != nil {
      validation = nil
    } else {
      let valSet = try open(config.data.valSplit)
      validation = config.run.valSamples > 0 ? SampleSubset(base: valSet, count: config.run.valSamples) : valSet
    }
    self.device = device
    self.config = config
  }

  /// The segmentation run to imitate, frozen, with the validation snippets.
  static func teacher(_ config: TrainingConfig, datasetDir: String, device: Device) throws -> Teacher {
    guard let run = config.flow.segmentationRun else { throw TrainingError("'segmentation_run' is not set") }
    let loaded: LoadedModel
    do { loaded = try ModelLoader.load(run: try RunLayout.existing(URL(fileURLWithPath: run))) } catch {
      throw TrainingError("segmentation_run \(run): \(error)")
    }
    guard loaded.manifest.task == .semantic else {
      throw TrainingError("segmentation_run \(run): a \(loaded.manifest.task.rawValue) model; the warp path needs a semantic one")
    }
    try loaded.network.to(device: device)
    loaded.network.eval()
    let normalization = loaded.manifest.normalization
    guard normalization.channelOrder == .rgb else { throw TrainingError("segmentation_run \(run): BGR input is not supported here") }
    var validation: VideoSnippets?
    if !config.data.valSplit.isEmpty {
      do { validation = try VideoSnippets.named(config.data.dataset, root: URL(fileURLWithPath: datasetDir), split: config.data.valSplit) } catch {
        throw TrainingError("cannot open the \(config.data.valSplit) sequences of \(config.data.dataset) at \(datasetDir): \(error)")
      }
    }
    return Teacher(
      network: loaded.network, mean: try Tensor(normalization.mean, shape: [1, 3, 1, 1]).to(device),
      std: try Tensor(normalization.std, shape: [1, 3, 1, 1]).to(device), pixelDivisor: Double(normalization.pixelDivisor),
      resolution: WarpPath.Resolution(rawValue: config.flow.warpAt) ?? .output, validation: validation)
  }

  public func parameterGroups() throws -> [ParameterGroup] {
    network.parameterGroups(lastLayer: { _ in false }, lastLayerMultiplier: 1,
                            noDecayOnBiasAndNorm: config.optimizer.noDecayOnBiasAndNorm)
  }

  public func loss(_ batch: Batch, step: Int) throws -> LossTerms {
    if let teacher { return try warpPathLoss(batch, teacher) }
    guard let second = batch.frames[.next], let flow = batch.flows[.next] else {
      throw TrainingError("a flow batch needs second frames and flows (\(batch.names.joined(separator: ", ")))")
    }
    let output = try network.forward(try FlowNetS.input(first: try batch.images.to(device), second: try second.to(device)))
    let truth = try flow.to(device)
    let total = try multiScaleEndPointError(
      predictions: [output.flow2] + output.coarser, flow: truth, weights: config.flow.lossWeights, flowScale: FlowNetS.flowScale)
    // The finest output's error in pixels, as validation reports it (at 1/4 resolution here).
    let finest = try Torch.withNoGrad {
      try endPointError(output.flow2 * FlowNetS.flowScale, try truth.avgPool2d(kernel: Size2(4, 4)))
    }
    return LossTerms(total: total, parts: [("epe", finest)])
  }

  /// Cross-entropy of the warp path's scores against the segmentation path's labels on the current frame.
  func warpPathLoss(_ batch: Batch, _ teacher: Teacher) throws -> LossTerms {
    guard let keyFrames = batch.frames[.key] else { throw TrainingError("a warp-path batch needs key frames (\(batch.names.joined(separator: ", ")))") }
    let current = try batch.images.to(device), key = try keyFrames.to(device)
    let keyLogits = try teacher.logits(key), labels = try teacher.logits(current).argmax(dim: 1)
    let output = try network.output(from: current, to: key, scale: config.flow.inputScale)
    let scores = try WarpPath.scores(
      keyLogits: keyLogits, flowToKey: try output.flow2 * (FlowNetS.flowScale / 4), scale: output.scale,
      size: Size2(current.shape[2], current.shape[3]), resolution: teacher.resolution)
    let loss = try softmaxCrossEntropy(logits: scores, labels: labels)
    let agreement = try Torch.withNoGrad { try (scores.argmax(dim: 1) .== labels).to(.float32).mean() * 100 }
    return LossTerms(total: loss, parts: [("warp", loss), ("agreement", agreement)])
  }

  /// Warp-path training: the confidence score (percent of pixels where the warp path
  /// agrees with the segmentation path) of each validation snippet's annotated frame
  /// from the keys 1 … max_key_distance frames before it, averaged.
  func validateWarpPath(_ teacher: Teacher, _ snippets: VideoSnippets) throws -> ValidationReport {
    let wasTraining = network.isTraining
    network.eval()
    defer { if wasTraining { network.train() } }
    var (sum, farthest, count, farCount) = (0.0, 0.0, 0, 0)
    func pixels(_ image: Image) throws -> Tensor { try (image.rgb().tensor() * 255).unsqueeze(0).to(device) }
    for snippet in snippets.snippets {
      let current = try pixels(try ImageIO.read(snippet.frames[snippet.annotated]))
      let labels = try teacher.logits(current).argmax(dim: 1)
      for distance in 1...config.flow.maximumKeyDistance where snippet.annotated - distance >= 0 {
        let key = try pixels(try ImageIO.read(snippet.frames[snippet.annotated - distance]))
        let score = try Torch.withInferenceMode { () -> Double? in
          let output = try network.output(from: current, to: key, scale: config.flow.inputScale)
          let warped = try WarpPath.scores(
            keyLogits: try teacher.logits(key), flowToKey: try output.flow2 * (FlowNetS.flowScale / 4), scale: output.scale,
            size: Size2(current.shape[2], current.shape[3]), resolution: teacher.resolution)
          return try RegionConfidence.score(warped.argmax(dim: 1), reference: labels)
        }
        guard let score else { continue }
        (sum, count) = (sum + score, count + 1)
        if distance == config.flow.maximumKeyDistance { (farthest, farCount) = (farthest + score, farCount + 1) }
      }
    }
    let (mean, far) = (sum / Double(max(count, 1)), farthest / Double(max(farCount, 1)))
    return ValidationReport(
      metrics: [("warp agreement", mean), ("agreement at distance \(config.flow.maximumKeyDistance)", far)],
      scalars: [("val/warp_agreement", mean), ("val/warp_agreement_farthest", far)],
      summary: String(format: "warp agreement %.2f %% (%.2f %% at distance %d; %d pairs)", mean, far, config.flow.maximumKeyDistance, count))
  }

  /// The mean end-point error over the validation pairs at their full size, and that of
  /// zero flow (or, in warp-path training, the warp path's agreement).
  public func validate(step: Int) throws -> ValidationReport? {
    if let teacher {
      guard let snippets = teacher.validation else { return nil }
      return try validateWarpPath(teacher, snippets)
    }
    guard let validation else { return nil }
    let wasTraining = network.isTraining
    network.eval()
    defer { if wasTraining { network.train() } }
    var (sum, zeroSum, pixels) = (0.0, 0.0, 0)
    var shown: [(tag: String, image: Image)] = []
    for index in 0..<validation.count {
      let sample = try validation.loadSample(at: index)
      guard let secondFrame = sample.frames[.next], let truthField = sample.flows[.next] else { continue }
      func rgb(_ image: Image) throws -> Tensor { try (image.rgb().tensor() * 255).unsqueeze(0).to(device) }
      let predicted = try Torch.withInferenceMode { try network.flow(from: try rgb(sample.image), to: try rgb(secondFrame)) }
      let truth = try truthField.tensor().unsqueeze(0).to(device)
      let count = truthField.width * truthField.height
      sum += try (predicted - truth).norm(dims: [1]).sum().item()
      zeroSum += try truth.norm(dims: [1]).sum().item()
      pixels += count
      if index == 0 && config.run.saveSummariesImages {
        let field = try FlowField(tensor: try predicted.squeeze(dim: 0).to(.cpu))
        shown = [("val/image", sample.image), ("val/flow", FlowColor.render(field)), ("val/true_flow", FlowColor.render(truthField))]
      }
    }
    guard pixels > 0 else { return nil }
    let (epe, zero) = (sum / Double(pixels), zeroSum / Double(pixels))
    return ValidationReport(
      metrics: [("EPE", epe), ("zero-flow EPE", zero)],
      scalars: [("val/epe", epe), ("val/zero_flow_epe", zero)], images: shown,
      summary: String(format: "EPE %.4f px (zero flow %.4f px; %d pairs)", epe, zero, validation.count), lowerIsBetter: true)
  }

  public func manifest() -> ModelManifest {
    ModelManifest(model: config.model.name, task: .flow, classes: 2, classNames: [], normalization: Self.rawPixels)
  }
}
