import Foundation

/// Every setting of a training run, grouped by concern (`config.optimizer.momentum`),
/// with DeepLab's flag names as YAML keys where DeepLab has the setting
/// (`base_learning_rate`, `train_crop_size`, …). `task` selects the task, and with
/// it which task-scoped settings (`semantic`, `foreground`) a configuration takes.
///
/// A configuration is resolved in layers: the defaults here, then a YAML file (a flat
/// mapping of `key: value`), then `--set key=value` overrides, then `validate()`.
/// Unknown keys, keys of another task and values of the wrong type are errors naming
/// the key (and the file and line); `yaml()` writes the resolved configuration back,
/// every key of its task included. The files beside this one hold the key table
/// (ConfigSchema), reading (ConfigReading), validation, writing, the value codec
/// (ConfigValues) and what the settings make (DerivedSettings).
public struct TrainingConfig: Equatable, Sendable {
  public enum LearningPolicy: String, CaseIterable, Sendable { case poly, step, piecewise, cosine }
  public enum OptimizerKind: String, CaseIterable, Sendable { case sgd, adam, adamw }
  public enum LossKind: String, CaseIterable, Sendable {
    /// The task's own: cross_entropy for semantic, balanced_bce for foreground.
    case auto
    case crossEntropy = "cross_entropy", dice, lovasz, balancedBCE = "balanced_bce"
  }
  public enum BalancedLossNormalization: String, CaseIterable, Sendable {
    case sum, perPixel = "per_pixel", perImage = "per_image"

    public var normalization: SegKitNN.BalancedLossNormalization {
      switch self {
      case .sum: return .sum
      case .perPixel: return .perPixel
      case .perImage: return .perImage
      }
    }
  }

  /// What is trained: a class per pixel, or foreground against background.
  public var task = ModelManifest.Task.semantic
  public var data = DataSettings()
  public var model = ModelSettings()
  public var input = InputSettings()
  public var schedule = ScheduleSettings()
  public var optimizer = OptimizerSettings()
  public var initialization = InitializationSettings()
  public var loss = LossSettings()
  /// Settings of task semantic only.
  public var semantic = SemanticSettings()
  /// Settings of task foreground only.
  public var foreground = ForegroundSettings()
  /// MaskRNN's settings (task foreground, `maskrnn_*` models).
  public var maskRNN = MaskRNNSettings()
  /// Settings of task flow only.
  public var flow = FlowSettings()
  /// Settings of task memory only (XMem).
  public var memory = MemorySettings()
  public var evaluation = EvaluationSettings()
  public var run = RunSettings()

  public struct DataSettings: Equatable, Sendable {
    public var dataset = "pascal_voc"
    public var datasetDir: String? = nil
    public var trainSplit = "train"
    public var valSplit = "val"
    public var numClasses: Int? = nil
    public var ignoreLabel = 255
  }

  public struct ModelSettings: Equatable, Sendable {
    public var name = "deeplabv3plus_mobilenet_v2"
    public var outputStride: Int? = nil
    public var atrousRates: [Int]? = nil
    public var auxiliaryHead: Bool? = nil
    public var separableConv = false
  }

  /// Input and augmentation.
  public struct InputSettings: Equatable, Sendable {
    public var trainCropSize = [513, 513]
    public var trainBatchSize = 8
    public var minScaleFactor = 0.5
    public var maxScaleFactor = 2.0
    public var scaleFactorStepSize = 0.25
    public var flipProbability = 0.5
    public var rotationDegrees = 0.0
    public var shuffle = true
  }

  /// Length of training and the learning rate.
  public struct ScheduleSettings: Equatable, Sendable {
    public var trainingNumberOfSteps = 30000
    public var epochs: Int? = nil
    public var learningPolicy = LearningPolicy.poly
    public var baseLearningRate = 0.0001
    public var learningPower = 0.9
    public var endLearningRate = 0.0
    public var learningRateDecayFactor = 0.1
    public var learningRateDecayStep = 2000
    public var learningRateBoundaries: [Int] = []
    public var learningRateValues: [Double] = []
    public var slowStartStep = 0
    public var slowStartLearningRate = 1e-4
    public var warmupSteps = 0
    public var warmupStartFactor = 0.0
  }

  public struct OptimizerSettings: Equatable, Sendable {
    public var kind = OptimizerKind.sgd
    public var momentum = 0.9
    public var nesterov = false
    public var weightDecay = 0.00004
    public var adamBeta1 = 0.9
    public var adamBeta2 = 0.999
    public var adamEpsilon = 1e-8
    public var gradientAccumulation = 1
    public var gradientClipNorm: Double? = nil
    public var noDecayOnBiasAndNorm = false
  }

  /// Initial weights and fine-tuning.
  public struct InitializationSettings: Equatable, Sendable {
    public var initialCheckpoint: String? = nil
    public var initializeLastLayer = true
    public var lastLayersContainLogitsOnly = false
    public var fineTuneBatchNorm = true
    public var syncBatchNorm = false
    public var lastLayerGradientMultiplier = 1.0
    public var referenceLearningRates = false
  }

  public struct LossSettings: Equatable, Sendable {
    public var kind = LossKind.auto
    public var auxLossWeight = 0.4
    public var upsampleLogits = true
  }

  public struct SemanticSettings: Equatable, Sendable {
    public var topKPercentPixels = 1.0
    public var hardExampleMiningStep = 0
    public var classWeights: [Double]? = nil
  }

  /// How the side outputs' loss weight changes over training (times `side_loss_weight`).
  public enum SideLossSchedule: String, CaseIterable, Sendable {
    /// 1 throughout (OSVOS-MindSpore's, with weight 0.5).
    case constant
    /// 1 − step / steps (OSVOS-PyTorch decays it per epoch).
    case linear
    /// `side_loss_values[i]` from `side_loss_boundaries[i − 1]` on (OSVOS-TensorFlow: [15000, 30000], [1, 0.5, 0]).
    case piecewise
  }

  public struct ForegroundSettings: Equatable, Sendable {
    public var balancedLossNormalization = BalancedLossNormalization.sum
    public var sideLossWeight = 1.0
    public var sideLossSchedule = SideLossSchedule.constant
    public var sideLossBoundaries: [Int] = []
    public var sideLossValues: [Double] = []
  }

  /// MaskRNN's parts and data (task foreground with a `maskrnn_*` model).
  public struct FlowSettings: Equatable, Sendable {
    /// FlowNet's weights of the end-point errors at 1/4, 1/8, … 1/64 of the input.
    public var lossWeights = [0.32, 0.08, 0.02, 0.01, 0.005]
    /// Warp-path training (dataset cityscapes): the segmentation run whose network is
    /// warped and imitated, frozen.
    public var segmentationRun: String? = nil
    /// Warp-path training: the largest distance between a key and its current frame.
    public var maximumKeyDistance = 9
    /// Warp-path training: where the key logits are warped (flow or output).
    public var warpAt = "output"
    /// Warp-path training: the factor frames are resized by for the flow network.
    public var inputScale = 1.0
  }

  /// Which of MaskRNN's variants a run trains (the paper's ablation trains each on its
  /// own): the network keeps both streams, but only the variant's readout is trained.
  public enum MaskRNNVariant: String, CaseIterable, Sendable {
    /// The appearance stream alone: its loss (and its side outputs') only.
    case appearance
    /// The flow stream alone: its loss (and its side outputs') only.
    case flow
    /// Both streams fused, no localiser: the fused loss and each stream's.
    case streams
    /// MaskRNN: both streams fused and the localiser (with `localisation`). The default.
    case full

    /// The streams whose losses train (the other keeps the parent's weights).
    public var trainedStreams: [String] {
      switch self {
      case .appearance: ["appearance"]
      case .flow: ["flow"]
      case .streams, .full: ["appearance", "flow"]
      }
    }
  }

  public struct MaskRNNSettings: Equatable, Sendable {
    public var variant = MaskRNNVariant.full
    public var fusion = MaskRNN.Fusion.sum
    public var localisation = true
    public var proposalEnlargement = 1.5
    /// The localiser's refined box enlarged by this before it gates the logits (1: the box itself).
    public var localiserGateEnlargement = 1.0
    public var localiserFeatures = MaskRNN.LocaliserFeatures.layer4
    public var flowPreset = "\(OpticalFlow.Preset.default)"
    /// dis, a flow network (flownet2s, flownets_thin) with `flowWeights`, or exact: the
    /// synthetic generator's own flows (Flow/480p, BackwardFlow/480p beside the frames).
    public var flowMethod = "dis"
    public var flowWeights: String? = nil
    public var perturbationRadius = 3
    public var perturbationShift = 4
    public var perturbationDrop = 0.25
    public var boxLossWeight = 1.0

    /// The previous masks' spoiling.
    public var perturbation: MaskPerturbation {
      MaskPerturbation(maximumRadius: perturbationRadius, maximumShift: perturbationShift, dropProbability: perturbationDrop)
    }
    public var preset: OpticalFlow.Preset? { OpticalFlow.Preset.allCases.first { "\($0)" == flowPreset } }

    /// Whether training reads the synthetic generator's exact flows instead of computing them.
    public var trainsOnExactFlow: Bool { flowMethod == "exact" }

    /// How the flows are computed: DIS with `flow_preset`, or the flow network of `flow_weights`.
    public func method(device: Device = .cpu) throws -> FlowMethod {
      do { return try NetworkFlow.method(flowMethod, preset: flowPreset, weights: flowWeights, device: device) } catch {
        throw TrainingError("flow_method \(flowMethod): \(error)")
      }
    }
  }

  /// XMem's training (task memory): clips, objects, deep updates, the cross-entropy's
  /// warm-up, and the inference settings its runs are used with.
  public struct MemorySettings: Equatable, Sendable {
    /// Frames per clip (XMem: 8 on video, 3 on static images).
    public var numFrames = 8
    /// Memory frames a segmented frame reads at most (XMem: 3 on video, 2 on static images).
    public var numRefFrames = 3
    /// Objects per clip at most (XMem: 3 on video, 1 on static images).
    public var maxNumObj = 3
    public var deepUpdateProb = 0.2
    public var startWarm = 20_000
    public var endWarm = 70_000
    /// The clips' largest frame jump: `maxJumpValues[0]` first, `maxJumpValues[i]` from
    /// `maxJumpFractions[i − 1]` of training on (XMem's main training: 5, 10, 15, 5 at 0.1, 0.3, 0.9).
    public var maxJumpValues = [5, 10, 15, 5]
    public var maxJumpFractions = [0.1, 0.3, 0.9]
    /// Inference (validation, and `segkit vos segment` on the run): XMem's settings.
    public var inference = XMemSettings()

    /// The largest jump at `fraction` of training.
    public func maximumJump(atFraction fraction: Double) -> Int {
      let passed = maxJumpFractions.filter { fraction >= $0 }.count
      return maxJumpValues[Swift.min(passed, maxJumpValues.count - 1)]
    }
  }

  public struct EvaluationSettings: Equatable, Sendable {
    public var evalCropSize: [Int]? = nil
    public var evalScales = [1.0]
    public var addFlippedImages = false
  }

  /// Where and how the run goes: folder, seed, device, threads, cadence.
  public struct RunSettings: Equatable, Sendable {
    public var trainLogdir: String? = nil
    public var seed = 0
    public var device = "auto"
    public var threads = 0
    public var workers = 2
    public var logInterval = 10
    public var valInterval = 1000
    public var valSamples = 0
    public var checkpointInterval = 1000
    public var keepCheckpoints = 5
    public var saveSummariesImages = true
    /// Semantic and foreground training in float64 (weights, activations, gradients): a
    /// check of numerics, such as data-parallel equality, without float32's rounding.
    public var float64 = false
  }

  public init() {}
}
