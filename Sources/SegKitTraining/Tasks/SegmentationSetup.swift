import Foundation

// What a run is built from: the datasets, the model and its initial weights, each
// checked with an error that names the setting at fault.

extension TrainingConfig {
  /// One split of the configured dataset.
  public func openDataset(split: String) throws -> SegmentationDataset {
    let format: DatasetFormat
    do { format = try DatasetFormat(named: data.dataset) } catch { throw TrainingError("'dataset': \(error)") }
    guard let datasetDir = data.datasetDir else {
      throw TrainingError("'dataset_dir' is not set: name the folder of the \(format.rawValue) dataset")
    }
    do {
      return try SegmentationDataset.open(format, root: URL(fileURLWithPath: datasetDir), split: split)
    } catch {
      throw TrainingError("cannot open the \(split) split of \(format.rawValue) at \(datasetDir): \(error)")
    }
  }

  /// The dataset kinds read as video sequences.
  public static let videoDatasets = ["davis2016", "davis2017", "youtube_vos"]

  /// One split of the configured video dataset, which must be one of `allowed`
  /// (youtube_vos: the split is the folder `<dataset_dir>/<split>`).
  public func openVideos(split: String, allowed: [String] = videoDatasets) throws -> VideoDataset {
    guard let datasetDir = data.datasetDir else { throw TrainingError("'dataset_dir' is not set: name the video dataset's folder") }
    guard allowed.contains(data.dataset) else {
      throw TrainingError("'dataset' \(data.dataset): \(model.name) trains on video sequences, \(allowed.joined(separator: ", "))")
    }
    let root = URL(fileURLWithPath: datasetDir)
    do {
      switch data.dataset {
      case "davis2016": return try .davis2016(root: root, split: split)
      case "davis2017": return try .davis2017(root: root, split: split)
      default: return try VideoDataset.youTubeVOS(root: root.appendingPathComponent(split)).dataset
      }
    } catch {
      throw TrainingError("cannot open the \(split) split of \(data.dataset) at \(datasetDir): \(error)")
    }
  }

  /// `num_classes`, else the dataset's own class count.
  public func classCount(of dataset: SegmentationDataset) throws -> Int {
    if let numClasses = data.numClasses { return numClasses }
    guard !dataset.openEndedClasses, !dataset.classNames.isEmpty else {
      throw TrainingError("'num_classes' must be set: the \(dataset.format.rawValue) dataset at \(dataset.root.path) has no fixed class list")
    }
    return dataset.classNames.count
  }

  /// The configured model with `classes` outputs, freshly initialised.
  public func makeModel(classes: Int) throws -> any SegmentationNetwork {
    if case .maskRNN(let encoder) = ModelFamily(name: model.name) {
      do {
        let network = try MaskRNN(encoder: encoder, fusion: maskRNN.fusion,
                                  localisation: maskRNN.localisation && maskRNN.variant == .full,
                                  localiserFeatures: maskRNN.localiserFeatures)
        network.localiser?.proposalEnlargement = maskRNN.proposalEnlargement
        network.localiser?.gateEnlargement = maskRNN.localiserGateEnlargement
        return network
      } catch {
        throw TrainingError("cannot build '\(model.name)' with these settings: \(error)")
      }
    }
    do {
      return try ModelZoo.make(
        model.name, classes: classes, outputStride: model.outputStride, auxiliaryHead: model.auxiliaryHead,
        atrousRates: model.atrousRates, separable: model.separableConv)
    } catch {
      throw TrainingError("cannot build '\(model.name)' with these settings: \(error)")
    }
  }

  /// Names (state-dict keys) of DeepLab's "last layers": with
  /// `last_layers_contain_logits_only`, the layers whose shape depends on the number of
  /// classes (found by building the model for one class more), else every layer of
  /// the heads (decoder, ASPP, logits, auxiliary head).
  public func lastLayerNames(of model: any SegmentationNetwork, classes: Int) throws -> Set<String> {
    let entries = try model.stateDict()
    guard initialization.lastLayersContainLogitsOnly else {
      return Set(entries.map(\.0).filter { $0.hasPrefix("classifier.") || $0.hasPrefix("aux_classifier.") })
    }
    let shapes = Dictionary(uniqueKeysWithValues: try makeModel(classes: classes + 1).stateDict().map { ($0.0, $0.1.shape) })
    return Set(entries.filter { shapes[$0.0] != $0.1.shape }.map(\.0))
  }

  /// The training augmentation: DeepLab's random scale, pad and crop, and flip.
  public func trainingAugmentation(normalization: InputNormalization = .imagenet) -> Augmentation {
    var augmentation = Augmentation.deeplab(
      crop: input.trainCropSize[0], minScale: input.minScaleFactor, maxScale: input.maxScaleFactor,
      step: input.scaleFactorStepSize)
    augmentation.crop = Size2(input.trainCropSize[0], input.trainCropSize[1])
    augmentation.flipProbability = input.flipProbability
    augmentation.rotation = input.rotationDegrees
    augmentation.normalization = normalization
    return augmentation
  }

  /// How validation and `segkit eval` run each image: `eval_scales`,
  /// `add_flipped_images`, and `eval_crop_size` as a sliding window. (DeepLab pads
  /// every image to `eval_crop_size`, which must cover the largest; here images
  /// that fit run whole, unpadded, and larger ones in windows.)
  public func inferenceSettings(multiScale: Bool = true) throws -> InferenceSettings {
    try InferenceSettings(
      scales: multiScale ? evaluation.evalScales : [1], flip: multiScale && evaluation.addFlippedImages,
      crop: evaluation.evalCropSize.map { Size2($0[0], $0[1]) })
  }

  /// Loads `initial_checkpoint` into `model`, built for `classes` classes.
  ///
  /// A whole-model checkpoint (keys `backbone.*`, e.g. torchvision's or a SegKit run's
  /// checkpoint) loads strictly, except the last layers when `initialize_last_layer` is
  /// false and an auxiliary head that only one side has; anything else is taken as the
  /// encoder's ImageNet classification checkpoint.
  public func loadInitialCheckpoint(into model: any SegmentationNetwork, classes: Int) throws {
    guard let path = initialization.initialCheckpoint else { return }
    let state: StateDict
    do {
      state = try StateDict.load(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw TrainingError("initial_checkpoint \(path): \(error)")
    }
    guard state.names.contains(where: { $0.hasPrefix(model.encoderKeyPrefix) }) else {
      do {
        try model.encoder.loadClassificationCheckpoint(state)
        return
      } catch {
        throw TrainingError("initial_checkpoint \(path) is neither a whole \(self.model.name) model nor its encoder's classification checkpoint: \(error)")
      }
    }
    let skipped = initialization.initializeLastLayer ? [] : try lastLayerNames(of: model, classes: classes)
    let report: LoadReport
    do {
      // A SegKit training checkpoint also holds its optimizer's state.
      report = try model.loadStateDict(
        state, strict: false, rename: { $0.hasPrefix(Checkpoint.optimizerPrefix) ? nil : $0 },
        skip: { skipped.contains($0) })
    } catch {
      if initialization.initializeLastLayer, let stored = try? ModelLoader.classCount(of: state, model: self.model.name),
         stored != classes {
        throw TrainingError(
          "initial_checkpoint \(path) was trained for \(stored) classes but this run has \(classes) (num_classes); set initialize_last_layer: false to start the last layers afresh")
      }
      throw TrainingError("initial_checkpoint \(path) does not fit \(self.model.name) with \(classes) classes: \(error)")
    }
    let isAux = { (name: String) in name.hasPrefix("aux_classifier.") }
    let missing = report.missing.filter { !isAux($0) }, unexpected = report.unexpected.filter { !isAux($0) }
    guard missing.isEmpty && unexpected.isEmpty else {
      let parts = [missing.isEmpty ? nil : "missing \(missing.prefix(5).joined(separator: ", "))",
                   unexpected.isEmpty ? nil : "unexpected \(unexpected.prefix(5).joined(separator: ", "))"]
      throw TrainingError("initial_checkpoint \(path) does not fit \(self.model.name): \(parts.compactMap { $0 }.joined(separator: "; "))")
    }
  }
}
