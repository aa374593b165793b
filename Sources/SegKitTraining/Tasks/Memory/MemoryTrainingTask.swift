import Foundation

/// XMem's training (task memory): clips of a video dataset (davis2016, davis2017,
/// youtube_vos; XMem's stage 3) or, from any image dataset, still images made into
/// short sequences (stage 0), through XMem's training pass and losses. Per clip, up to
/// `max_num_obj` of the objects in its first frame are followed; per step, each middle
/// frame's deep update and each late frame's memory frames are drawn from the run's
/// seed and the step, so a resumed run draws what an uninterrupted one would. The
/// network trains with batch norm frozen, as XMem's does. Validation segments the
/// validation split's first `val_samples` videos from their first-frame masks with the
/// run's inference settings and reports the mean J over objects and frames.
/// `initial_checkpoint` is an XMem state dict (XMem's `XMem.pth` or an earlier run's
/// `model.safetensors`, e.g. stage 0's for stage 3).
final class MemoryTrainingTask: TrainingTask {
  let config: TrainingConfig
  let network: XMem
  let device: Device
  let trainLoader: DataLoader
  let validationVideos: VideoDataset?
  let clipsAreVideo: Bool

  var model: Module { network }
  var summary: String {
    "xmem (\(network.trainableParameterCount) trainable parameters, \(network.dimensions)) on \(device); "
      + "\(trainLoader.source.count) training \(clipsAreVideo ? "videos" : "images") as clips of \(config.memory.numFrames) frames"
  }

  init(config: TrainingConfig, device: Device, role: ProcessRole = .single) throws {
    guard let datasetDir = config.data.datasetDir else { throw TrainingError("'dataset_dir' is not set: name the dataset's folder") }
    func videos(_ split: String) throws -> VideoDataset { try config.openVideos(split: split) }
    guard !config.run.float64 else { throw TrainingError("'float64' is for semantic and foreground training; XMem trains in float32") }
    let memory = config.memory
    clipsAreVideo = TrainingConfig.videoDatasets.contains(config.data.dataset)
    let options = LoaderOptions(
      batchSize: config.input.trainBatchSize, shuffle: config.input.shuffle, seed: UInt64(config.run.seed), dropLast: true,
      workers: config.run.workers, prefetch: 2 * max(1, config.run.workers), rank: role.rank, worldSize: role.worldSize)
    let source: any SampleSource
    if clipsAreVideo {
      let train = try videos(config.data.trainSplit)
      // The jump follows the fraction of training done, known from the epoch.
      let videoCount = train.sequences.count
      let stepsPerEpoch = max(1, videoCount / role.worldSize / config.input.trainBatchSize)
      let totalSteps = max(1, config.totalSteps(trainingSamples: stepsPerEpoch * config.input.trainBatchSize))
      do {
        source = try VideoClipSource(dataset: train, length: memory.numFrames, maximumJump: { epoch in
          memory.maximumJump(atFraction: Double(epoch * stepsPerEpoch) / Double(totalSteps))
        })
      } catch { throw TrainingError("the \(config.data.trainSplit) split at \(datasetDir): \(error)") }
    } else {
      do {
        source = try StaticSequenceSource(base: try config.openDataset(split: config.data.trainSplit), length: memory.numFrames,
                                          maximumObjects: memory.maxNumObj)
      } catch let error as TrainingError { throw error } catch { throw TrainingError("\(error)") }
    }
    var augmentation = config.trainingAugmentation(normalization: .imagenet)
    // XMem's clip-wide colour change (ColorJitter(0.1, 0.03, 0.03)).
    (augmentation.brightness, augmentation.contrast, augmentation.saturation) = (0.1, 0.03, 0.03)
    trainLoader = try DataLoader(source: source, augmentation: augmentation, options: options)
    guard trainLoader.stepsPerEpoch > 0 else {
      throw TrainingError("the \(config.data.trainSplit) split has \(source.count) clips, fewer than one batch (train_batch_size \(config.input.trainBatchSize)) per process")
    }
    validationVideos = clipsAreVideo && !config.data.valSplit.isEmpty ? try videos(config.data.valSplit) : nil

    Torch.manualSeed(UInt64(config.run.seed))
    if let path = config.initialization.initialCheckpoint {
      do {
        var entries: [String: Tensor] = [:]
        for (name, tensor) in try StateDict.load(contentsOf: URL(fileURLWithPath: path)) where !name.hasPrefix(Checkpoint.optimizerPrefix) {
          entries[name] = tensor
        }
        network = try XMem(stateDict: entries)
      } catch {
        throw TrainingError("initial_checkpoint \(path) is not an XMem state dict: \(error)")
      }
    } else {
      network = try XMem()
    }
    try network.to(device: device)
    network.eval()  // XMem trains with batch norm frozen
    self.config = config
    self.device = device
  }

  func parameterGroups() throws -> [ParameterGroup] {
    network.parameterGroups(noDecayOnBiasAndNorm: config.optimizer.noDecayOnBiasAndNorm)
  }

  /// The clips' frames [B, T, 3, H, W] and object ids [B, T, H, W] (void and padding as background).
  static func clips(_ batch: Batch, length: Int) throws -> (frames: Tensor, ids: Tensor) {
    guard let first = batch.labels else { throw TrainingError("a clip batch needs its first frame's objects") }
    var frames = [batch.images], ids = [first]
    for i in 1..<length {
      guard let frame = batch.frames[.clip(i)], let mask = batch.masks[.clip(i)] else {
        throw TrainingError("a clip batch of \(length) frames lacks frame \(i)")
      }
      frames.append(frame)
      ids.append(mask)
    }
    let stacked = try Tensor.stack(ids, dim: 1)
    return (try Tensor.stack(frames, dim: 1), try stacked.maskedFill(stacked .== Double(voidLabel), 0))
  }

  func loss(_ batch: Batch, step: Int) throws -> LossTerms {
    let memory = config.memory
    let (frames, ids) = try Self.clips(batch, length: memory.numFrames)
    let (clipCount, length) = (frames.shape[0], frames.shape[1])
    let (height, width) = (frames.shape[3], frames.shape[4])
    // The followed objects: up to max_num_obj of each first frame's, as classes 1…O.
    var perClip: [Tensor] = []
    var objects: [Int] = []
    for b in 0..<clipCount {
      let clip = try ids.select(dim: 0, index: b)
      let present = Set(try clip.select(dim: 0, index: 0).flatten().toArray(Int64.self)).subtracting([0]).sorted()
      var random = SeededRandom(UInt64(config.run.seed), 0x4F42_4A53, UInt64(step), UInt64(b))
      let chosen = present.count > memory.maxNumObj ? Array(random.permutation(present.count).prefix(memory.maxNumObj)).map { present[$0] } : present
      var clipClasses = try Tensor.zeros([length, height, width], dtype: .int64)
      for (i, id) in chosen.enumerated() { clipClasses = try clipClasses.maskedFill(clip .== Double(id), Double(i + 1)) }
      perClip.append(clipClasses)
      objects.append(max(1, chosen.count))
    }
    let classes = try Tensor.stack(perClip)
    let slots = objects.max() ?? 1
    let firstClasses = try classes.select(dim: 1, index: 0)
    let firstMasks = try Tensor.stack(try (0..<slots).map { try (firstClasses .== Double($0 + 1)).to(.float32) }, dim: 1)
    let selector = try Tensor(objects.flatMap { count in (0..<slots).map { Float($0 < count ? 1 : 0) } }, shape: [clipCount, slots])
    var random = SeededRandom(UInt64(config.run.seed), 0x4445_4550, UInt64(step))
    let deepUpdates = (0..<max(0, length - 2)).map { _ in random.chance(memory.deepUpdateProb) }
    var references: [Int: [[Int]]] = [:]
    for t in (memory.numRefFrames + 1)..<max(memory.numRefFrames + 1, length) {
      references[t] = (0..<clipCount).map { _ in [0] + random.permutation(t - 1).prefix(memory.numRefFrames - 1).map { $0 + 1 } }
    }
    let pass = XMemClipPass(network: network, referenceFrames: memory.numRefFrames)
    let segmented = try pass(frames: frames.to(device), firstMasks: firstMasks.to(device), selector: selector.to(device),
                             deepUpdates: deepUpdates, referenceIndices: { references[$0] ?? [] })
    return try XMemLoss(startWarm: memory.startWarm, endWarm: memory.endWarm)(segmented, classes: classes.to(device), objects: objects, step: step)
  }

  /// The mean J over the objects and frames (after the first) of the first `val_samples`
  /// validation videos, segmented from their first frames' masks.
  func validate(step: Int) throws -> ValidationReport? {
    guard let videos = validationVideos else { return nil }
    let sequences = config.run.valSamples > 0 ? Array(videos.sequences.prefix(config.run.valSamples)) : videos.sequences
    let segmenter = try XMemSegmenter(network: network, settings: config.memory.inference, device: device)
    var total = 0.0, count = 0
    for sequence in sequences {
      guard let firstLabel = sequence.frames.first?.label?.url else { continue }
      let firstMask = try ImageIO.readLabel(firstLabel)
      let ids = Set(firstMask.pixels).subtracting([0, voidLabel])
      for (t, files) in sequence.frames.enumerated() {
        let frame = try ImageIO.read(files.image)
        let prediction = try Torch.withNoGrad {
          t == 0 ? try segmenter.start(firstFrame: frame, mask: firstMask) : try segmenter.next(frame)
        }
        guard t > 0, let url = files.label?.url else { continue }
        let truth = try ImageIO.readLabel(url)
        for id in ids {
          let predicted = try BinaryMask(height: truth.height, width: truth.width, values: prediction.pixels.map { $0 == id })
          let expected = try BinaryMask(height: truth.height, width: truth.width, values: truth.pixels.map { $0 == id })
          let void = try BinaryMask(height: truth.height, width: truth.width, values: truth.pixels.map { $0 == voidLabel })
          total += try DAVIS.regionSimilarity(prediction: predicted, groundTruth: expected, void: void)
          count += 1
        }
      }
    }
    let meanJ = count > 0 ? total / Double(count) : 0
    return ValidationReport(metrics: [("J", meanJ)], scalars: [("val/J", meanJ)],
                            summary: String(format: "mean J %.4f (%d videos, %d object-frames, from their first-frame masks)", meanJ, sequences.count, count))
  }

  func manifest() -> ModelManifest {
    ModelManifest(model: config.model.name, task: .memory, classes: 1, classNames: ["background"], normalization: .imagenet)
  }
}
