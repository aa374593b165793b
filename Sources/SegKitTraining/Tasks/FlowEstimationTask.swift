import Foundation

/// Optical flow: a FlowNetS (`flownet2s`, `flownets_thin`) trained on frame pairs with
/// their true flow (FlyingChairs' layout; `segkit data synth --kind flow` makes
/// synthetic ones) by FlowNet's multi-scale end-point error, scored on the
/// validation pairs by the end-point error at full resolution, beside the error of
/// predicting no motion at all.
public final class FlowEstimationTask: TrainingTask {
  public let config: TrainingConfig
  public let network: FlowNetS
  public let device: Device
  public let trainLoader: DataLoader
  let validation: (any SampleSource)?

  public var model: Module { network }
  public var summary: String {
    "\(config.model.name) (\(network.trainableParameterCount) trainable parameters, optical flow) on \(device); \(trainLoader.source.count) training pairs"
  }

  /// Frames reach the network as 0…255 RGB; FlowNetS normalises its own input.
  static let rawPixels = InputNormalization(mean: [0, 0, 0], std: [1, 1, 1], pixelDivisor: 1)

  public init(config: TrainingConfig, device: Device, role: ProcessRole = .single) throws {
    guard let widths = ModelZoo.flowNetworkWidths(config.model.name) else {
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
    let trainSet = try open(config.data.trainSplit)
    Torch.manualSeed(UInt64(config.run.seed))
    network = try FlowNetS(widths: widths)
    if let path = config.initialization.initialCheckpoint {
      do {
        let state = try StateDict.load(contentsOf: URL(fileURLWithPath: path))
        // A SegKit checkpoint also holds its optimizer's state.
        try network.loadStateDict(state, strict: true, rename: { $0.hasPrefix(Checkpoint.optimizerPrefix) ? nil : $0 })
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
    if config.data.valSplit.isEmpty {
      validation = nil
    } else {
      let valSet = try open(config.data.valSplit)
      validation = config.run.valSamples > 0 ? SampleSubset(base: valSet, count: config.run.valSamples) : valSet
    }
    self.device = device
    self.config = config
  }

  public func parameterGroups() throws -> [ParameterGroup] {
    network.parameterGroups(lastLayer: { _ in false }, lastLayerMultiplier: 1,
                            noDecayOnBiasAndNorm: config.optimizer.noDecayOnBiasAndNorm)
  }

  public func loss(_ batch: Batch, step: Int) throws -> LossTerms {
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

  /// The mean end-point error over the validation pairs at their full size, and that of zero flow.
  public func validate(step: Int) throws -> ValidationReport? {
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
