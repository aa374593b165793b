import Foundation

/// MaskRNN's offline training (task foreground with a `maskrnn_*` model), one object of
/// one frame per sample (`MaskPropagationSource`): the frame, the object's annotated
/// mask of the frame before warped to it by the cached flow and spoilt
/// (`MaskPerturbation.training`), the flow magnitudes to both neighbours. The loss is
/// OSVOS's class-balanced sigmoid cross-entropy on the fused logits before the box
/// (`fused`), on each stream's fused output and, weighted by `side_loss_weight` and its
/// schedule, on each stream's side outputs; plus, with the localiser, the smooth-L1 loss
/// of its box deltas against the ground-truth box's. `maskrnn_variant` appearance or
/// flow trains that stream's losses only, streams has no localiser. Validation: the foreground IoU of
/// the validation split's frames from their annotated previous masks (teacher forcing),
/// of MaskRNN's output and of each readout the ablation compares.
/// `initial_checkpoint` may be an OSVOS parent (both streams start from it, the
/// appearance stream widened to the mask channel) or a MaskRNN checkpoint.
final class MaskPropagationTask: TrainingTask {
  let config: TrainingConfig
  let network: MaskRNN
  let parts: SegmentationParts
  let device: Device
  let totalSteps: Int
  let validationSource: MaskPropagationSource?

  var model: Module { network }
  var trainLoader: DataLoader { parts.trainLoader }
  var summary: String { parts.summary(config, classes: "one object at a time") }

  init(config: TrainingConfig, device: Device, role: ProcessRole = .single) throws {
    guard let datasetDir = config.data.datasetDir else { throw TrainingError("'dataset_dir' is not set: name the DAVIS folder") }
    let root = URL(fileURLWithPath: datasetDir)
    func videos(_ split: String) throws -> VideoDataset { try config.openVideos(split: split, allowed: ["davis2016", "davis2017"]) }
    let flows: any FrameFlowSource
    if config.maskRNN.trainsOnExactFlow {
      flows = ExactFlows(root: root)
    } else {
      let method = try config.maskRNN.method()
      do { flows = try FlowCache(folder: FlowCache.defaultFolder(forDatasetAt: root), method: method) } catch {
        throw TrainingError("\(error)")
      }
    }
    let train = try videos(config.data.trainSplit)
    do { try flows.prepare(train.sequences) } catch { throw TrainingError("\(error)") }
    let source = try MaskPropagationSource(dataset: train, flows: flows, perturbation: config.maskRNN.perturbation, seed: UInt64(config.run.seed))
    if config.data.valSplit.isEmpty {
      validationSource = nil
    } else {
      let validation = try videos(config.data.valSplit)
      do { try flows.prepare(validation.sequences) } catch { throw TrainingError("\(error)") }
      validationSource = try MaskPropagationSource(dataset: validation, flows: flows, perturbation: .none)
    }
    // The parts build the model and loader; the initial checkpoint is loaded here (an OSVOS parent goes into both streams).
    guard !config.run.float64 else { throw TrainingError("'float64' is for semantic and foreground training; MaskRNN trains in float32") }
    var partsConfig = config
    partsConfig.initialization.initialCheckpoint = nil
    partsConfig.data.valSplit = ""
    parts = try SegmentationParts(config: partsConfig, device: device, role: role, outputChannels: { _ in 1 }, trainingView: { _ in source })
    guard let network = parts.network as? MaskRNN else { throw TrainingError("\(config.model.name) is not a MaskRNN network") }
    self.network = network
    if let path = config.initialization.initialCheckpoint {
      do {
        let state = try StateDict.load(contentsOf: URL(fileURLWithPath: path))
        if state.names.contains(where: { $0.hasPrefix("appearance.") }) {
          // The run's settings decide the enlargements, not the checkpoint's; its localiser must read the run's features.
          if let localiser = network.localiser, try MaskRNN.localiserFeatures(of: state).level != localiser.featureLevel,
            state.names.contains(where: { $0.hasPrefix("localiser.") }) {
            throw TrainingError("its localiser reads \(try MaskRNN.localiserFeatures(of: state).rawValue) features, the run's 'localiser_features' is \(config.maskRNN.localiserFeatures.rawValue)")
          }
          let runSettings: Set = ["localiser.proposal_enlargement", "localiser.gate_enlargement", "localiser.feature_level"]
          try network.loadStateDict(state, skip: { runSettings.contains($0) })
        } else {
          try network.loadStreams(from: state)
        }
        try network.to(device: device)
      } catch {
        throw TrainingError("initial_checkpoint \(path): \(error)")
      }
    }
    self.config = config
    self.device = device
    totalSteps = config.totalSteps(trainingSamples: parts.trainLoader.stepsPerEpoch * config.input.trainBatchSize)
  }

  func parameterGroups() throws -> [ParameterGroup] { network.parameterGroups() }

  /// The network's inputs from a batch: the frames, the warped previous masks (0/1) and the flow magnitudes.
  static func inputs(_ batch: Batch, device: Device) throws -> (image: Tensor, mask: Tensor, flows: Tensor) {
    guard let previous = batch.masks[.previous], let backward = batch.flows[.previous], let forward = batch.flows[.next] else {
      throw TrainingError("a mask-propagation batch needs the previous mask and both flows")
    }
    func magnitude(_ flow: Tensor) throws -> Tensor { try flow.pow(2).sum(dim: 1, keepDim: true).sqrt() }
    return (try batch.images.to(device), try (previous .== 1).to(.float32).unsqueeze(1).to(device),
            try Tensor.cat([magnitude(backward), magnitude(forward)], dim: 1).to(device))
  }

  func loss(_ batch: Batch, step: Int) throws -> LossTerms {
    guard let labels = try batch.labels?.to(device) else { throw TrainingError("the training batch has no labels") }
    let (image, mask, flows) = try Self.inputs(batch, device: device)
    let output = try network.forward(image: image, warpedMask: mask, flowMagnitudes: flows)
    let foreground = try (labels .== 1).to(.float32).unsqueeze(1)
    let normalization = config.foreground.balancedLossNormalization.normalization
    func balanced(_ logits: Tensor) throws -> Tensor {
      try classBalancedSigmoidCrossEntropy(logits: logits, labels: foreground, normalization: normalization)
    }
    // A one-stream variant trains that stream alone: the fused loss would train the other too.
    let trained = config.maskRNN.variant.trainedStreams
    let streams = [("appearance", output.appearance), ("flow", output.flow)].filter { trained.contains($0.0) }
    var parts: [(name: String, value: Tensor)] = trained.count == 2 ? [("fused", try balanced(output.fused))] : []
    for (name, stream) in streams { parts.append((name, try balanced(stream.out))) }
    var terms = LossTerms(total: parts[0].value, parts: parts)
    for part in parts.dropFirst() { terms.total = try terms.total + part.value }
    let sideWeight = ForegroundSegmentationTask.sideLossWeight(config.foreground, step: step, totalSteps: totalSteps)
    if sideWeight > 0 {
      for (stream, output) in streams {
        var sides: Tensor?
        for (_, side) in output.extras.sorted(by: { $0.key < $1.key }) {
          let sideLoss = try balanced(side)
          sides = try sides.map { try $0 + sideLoss } ?? sideLoss
        }
        if let sides {
          terms.total = try terms.total + sides * sideWeight
          terms.parts.append(("\(stream)_sides", sides))
        }
      }
    }
    // The localiser learns the ground-truth box from the proposal (when every sample has both).
    if let deltas = output.boxDeltas, let proposals = output.proposal {
      let boxes = try (0..<labels.shape[0]).map { try ObjectLocaliser.proposal(from: foreground.select(dim: 0, index: $0), enlargement: 1) }
      if boxes.allSatisfy({ $0 != nil }) {
        let truth = try Tensor(boxes.flatMap { $0 ?? [] }.map { Float($0) }, shape: [boxes.count, 4]).to(device)
        let target = try ObjectLocaliser.encode(truth, relativeTo: proposals)
        let difference = try (deltas - target).abs()
        let clipped = try difference.clamp(max: 1)
        let smoothL1 = try (clipped * clipped * 0.5 + (difference - 1).clamp(min: 0)).mean()
        terms.total = try terms.total + smoothL1 * config.maskRNN.boxLossWeight
        terms.parts.append(("box", smoothL1))
      }
    }
    return terms
  }

  /// The readouts validation scores, as `segkit vos ablation` names them: MaskRNN's
  /// output (fused and gated by the box) first, then each part of it.
  static let readouts: [(name: String, key: String, logits: (MaskRNN.Output) -> Tensor)] = [
    ("fused + box", "foreground", { $0.out }), ("appearance", "appearance", { $0.appearance.out }),
    ("flow", "flow", { $0.flow.out }), ("fused", "fused", { $0.fused }),
  ]

  /// The foreground IoU over the validation samples (their first `val_samples`), each
  /// segmented from its annotated previous mask (teacher forcing), of the output and of
  /// each readout: a readout that is good here but poor recurrently (`vos ablation`)
  /// drifts on its own masks.
  func validate(step: Int) throws -> ValidationReport? {
    guard let source = validationSource else { return nil }
    let count = config.run.valSamples > 0 ? min(config.run.valSamples, source.count) : source.count
    let wasTraining = network.isTraining
    network.eval()
    defer { if wasTraining { network.train() } }
    var intersection = [Double](repeating: 0, count: Self.readouts.count), union = intersection
    for index in 0..<count {
      let sample = try source.loadSample(at: index)
      guard let label = sample.label, let previous = sample.masks[.previous] else { continue }
      let image = try network.inputNormalization.batch(sample.image).to(device)
      let mask = try (try previous.labelTensor() .== 1).to(.float32).unsqueeze(0).unsqueeze(0).to(device)
      let flows = try Tensor.cat([sample.flows[.previous], sample.flows[.next]].map { flow -> Tensor in
        guard let flow else { throw TrainingError("\(sample.name): a validation sample without its flows") }
        return try flow.tensor().pow(2).sum(dim: 0, keepDim: true).sqrt()
      }, dim: 0).unsqueeze(0).to(device)
      let output = try Torch.withNoGrad { try network.forward(image: image, warpedMask: mask, flowMagnitudes: flows) }
      let truth = try label.labelTensor()
      let valid = try truth .!= Double(voidLabel), object = try truth .== 1
      for (k, readout) in Self.readouts.enumerated() {
        let predicted = try (readout.logits(output).squeeze(dim: 0).squeeze(dim: 0) .> 0).to(.cpu)
        intersection[k] += try ((predicted .& object).to(.float32)).sum().item()
        union[k] += try (((predicted .& valid) .| object).to(.float32)).sum().item()
      }
    }
    let ious = zip(intersection, union).map { $1 > 0 ? $0 / $1 : 1 }
    let parts = zip(Self.readouts, ious).dropFirst().map { String(format: "%@ %.4f", $0.name, $1) }.joined(separator: ", ")
    return ValidationReport(
      metrics: zip(Self.readouts, ious).map { ("\($0.key) IoU", $1) },
      scalars: zip(Self.readouts, ious).map { ("val/\($0.key)_iou", $1) }, images: [],
      summary: String(format: "foreground IoU %.4f (%@; %d objects' frames, from their annotated previous masks)", ious[0], parts, count))
  }

  func manifest() -> ModelManifest {
    parts.manifest(config, task: .foreground, classNames: ["background", "foreground"], colormap: .pascal)
  }
}
