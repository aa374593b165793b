import Foundation

// What a run is built from: the datasets, the model and its initial weights, each
// checked with an error that names the setting at fault.

extension TrainingConfig {
  /// One split of the configured dataset.
  public func openDataset(split: String) throws -> SegmentationDataset {
    let format = try InferenceModel.datasetFormat(named: dataset)
    guard let datasetDir else {
      throw TrainingError("'dataset_dir' is not set: name the folder of the \(format.rawValue) dataset")
    }
    do {
      return try SegmentationDataset.open(format, root: URL(fileURLWithPath: datasetDir), split: split)
    } catch {
      throw TrainingError("cannot open the \(split) split of \(format.rawValue) at \(datasetDir): \(error)")
    }
  }

  /// `num_classes`, else the dataset's own class count.
  public func classCount(of dataset: SegmentationDataset) throws -> Int {
    if let numClasses { return numClasses }
    guard !dataset.openEndedClasses, !dataset.classNames.isEmpty else {
      throw TrainingError("'num_classes' must be set: the \(dataset.format.rawValue) dataset at \(dataset.root.path) has no fixed class list")
    }
    return dataset.classNames.count
  }

  /// The configured model with `classes` outputs, freshly initialised.
  public func makeModel(classes: Int) throws -> any SegmentationNetwork {
    do {
      return try ModelZoo.make(
        model, classes: classes, outputStride: outputStride, auxiliaryHead: auxiliaryHead, atrousRates: atrousRates,
        separable: separableConv)
    } catch {
      throw TrainingError("cannot build '\(model)' with these settings: \(error)")
    }
  }

  /// Names (state-dict keys) of DeepLab's "last layers": with
  /// `last_layers_contain_logits_only`, the layers whose shape depends on the number of
  /// classes (found by building the model for one class more), else every layer of
  /// the heads (decoder, ASPP, logits, auxiliary head).
  public func lastLayerNames(of model: any SegmentationNetwork, classes: Int) throws -> Set<String> {
    let entries = try model.stateDict()
    guard lastLayersContainLogitsOnly else {
      return Set(entries.map(\.0).filter { $0.hasPrefix("classifier.") || $0.hasPrefix("aux_classifier.") })
    }
    let shapes = Dictionary(uniqueKeysWithValues: try makeModel(classes: classes + 1).stateDict().map { ($0.0, $0.1.shape) })
    return Set(entries.filter { shapes[$0.0] != $0.1.shape }.map(\.0))
  }

  /// The training augmentation: DeepLab's random scale, pad and crop, and flip.
  public func trainingAugmentation() -> Augmentation {
    var augmentation = Augmentation.deeplab(
      crop: trainCropSize[0], minScale: minScaleFactor, maxScale: maxScaleFactor, step: scaleFactorStepSize)
    augmentation.crop = Size2(trainCropSize[0], trainCropSize[1])
    augmentation.flipProbability = flipProbability
    return augmentation
  }

  /// Validation input: whole images, or padded (bottom and right, void labels) and
  /// centre-cropped to `eval_crop_size` as DeepLab's evaluation does.
  public func validationAugmentation() -> Augmentation {
    var augmentation = Augmentation.evaluation()
    if let evalCropSize {
      augmentation.crop = Size2(evalCropSize[0], evalCropSize[1])
      augmentation.randomCrop = false
    }
    return augmentation
  }

  /// Loads `initial_checkpoint` into `model`, built for `classes` classes.
  ///
  /// A whole-model checkpoint (keys `backbone.*`, e.g. torchvision's or a SegKit run's
  /// checkpoint) loads strictly, except the last layers when `initialize_last_layer` is
  /// false and an auxiliary head that only one side has; anything else is taken as the
  /// encoder's ImageNet classification checkpoint.
  public func loadInitialCheckpoint(into model: any SegmentationNetwork, classes: Int) throws {
    guard let path = initialCheckpoint else { return }
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
        throw TrainingError("initial_checkpoint \(path) is neither a whole \(model) model nor its encoder's classification checkpoint: \(error)")
      }
    }
    let skipped = initializeLastLayer ? [] : try lastLayerNames(of: model, classes: classes)
    let report: LoadReport
    do {
      // A SegKit training checkpoint also holds its optimizer's state.
      report = try model.loadStateDict(
        state, strict: false, rename: { $0.hasPrefix(Checkpoint.optimizerPrefix) ? nil : $0 },
        skip: { skipped.contains($0) })
    } catch {
      if initializeLastLayer, let stored = try? SegKitTraining.classCount(of: state, model: self.model), stored != classes {
        throw TrainingError(
          "initial_checkpoint \(path) was trained for \(stored) classes but this run has \(classes) (num_classes); set initialize_last_layer: false to start the last layers afresh")
      }
      throw TrainingError("initial_checkpoint \(path) does not fit \(self.model) with \(classes) classes: \(error)")
    }
    let isAux = { (name: String) in name.hasPrefix("aux_classifier.") }
    let missing = report.missing.filter { !isAux($0) }, unexpected = report.unexpected.filter { !isAux($0) }
    guard missing.isEmpty && unexpected.isEmpty else {
      let parts = [missing.isEmpty ? nil : "missing \(missing.prefix(5).joined(separator: ", "))",
                   unexpected.isEmpty ? nil : "unexpected \(unexpected.prefix(5).joined(separator: ", "))"]
      throw TrainingError("initial_checkpoint \(path) does not fit \(self.model): \(parts.compactMap { $0 }.joined(separator: "; "))")
    }
  }
}

/// The first `count` samples of a source (validation on a subset).
struct SampleSubset: SampleSource {
  let base: any SampleSource
  let count: Int
  func loadSample(at index: Int) throws -> Sample { try base.loadSample(at: index) }
}

// MARK: - Shared by training and evaluation

/// Runs `model` on `images` ([N, 3, H, W], on the model's device) without gradients,
/// adds its argmax predictions against `labels` ([N, H, W] int64, void = the matrix's
/// ignore index) to `matrix`, and returns the predictions ([N, H, W] int64). The model
/// is used in whatever mode it is in; call `eval()` first.
@discardableResult
public func accumulatePredictions(
  of model: any SegmentationNetwork, images: Tensor, labels: Tensor, into matrix: inout ConfusionMatrix
) throws -> Tensor {
  let predictions = try Torch.withNoGrad { try model(images).out.argmax(dim: 1) }
  try matrix.update(predictions: predictions, labels: labels)
  return predictions
}

// MARK: - Console

/// How a trainer reports on standard output (the run's train.log gets every line regardless).
public enum TrainerConsole: Sendable {
  case quiet
  /// Log lines only (for pipes and files).
  case lines
  /// Log lines and a progress line redrawn in place (for terminals).
  case progressBar

  /// A progress bar when standard output is a terminal, plain lines otherwise.
  public static var automatic: TrainerConsole { isatty(STDOUT_FILENO) == 1 ? .progressBar : .lines }
}

final class ConsoleReporter {
  let mode: TrainerConsole
  private var barShown = false

  init(_ mode: TrainerConsole) { self.mode = mode }

  func line(_ text: String) {
    guard mode != .quiet else { return }
    write((barShown ? "\r\u{1B}[K" : "") + text + "\n")
    barShown = false
  }

  func progress(_ text: String) {
    guard mode == .progressBar else { return }
    write("\r\u{1B}[K" + text)
    barShown = true
  }

  func finish() {
    if barShown { write("\n") }
    barShown = false
  }

  /// Through `print`, so that these lines and the command's own stay in order.
  private func write(_ text: String) {
    print(text, terminator: "")
    fflush(stdout)
  }
}

/// "1h02m", "3m05s", "42s".
func durationText(_ seconds: Double) -> String {
  guard seconds.isFinite, seconds >= 0 else { return "?" }
  let s = Int(seconds.rounded())
  if s >= 3600 { return String(format: "%dh%02dm", s / 3600, s % 3600 / 60) }
  if s >= 60 { return String(format: "%dm%02ds", s / 60, s % 60) }
  return "\(s)s"
}
