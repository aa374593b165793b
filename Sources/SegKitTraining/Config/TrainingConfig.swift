import Foundation
import Yams

/// Every setting of a training run, with DeepLab's flag names as YAML keys where
/// DeepLab has the setting (`base_learning_rate`, `train_crop_size`, …).
///
/// A configuration is resolved in layers: the defaults here, then a YAML file (a flat
/// mapping of `key: value`), then `--set key=value` overrides, then `validate()`.
/// Unknown keys and values of the wrong type are errors naming the key (and the file
/// and line); `yaml()` writes the resolved configuration back, every key included.
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

  // Dataset
  public var dataset = "pascal_voc"
  public var datasetDir: String? = nil
  public var trainSplit = "train"
  public var valSplit = "val"
  public var numClasses: Int? = nil
  public var ignoreLabel = 255

  // Model
  public var model = "deeplabv3plus_mobilenet_v2"
  public var outputStride: Int? = nil
  public var atrousRates: [Int]? = nil
  public var auxiliaryHead: Bool? = nil
  public var separableConv = false

  // Input and augmentation
  public var trainCropSize = [513, 513]
  public var trainBatchSize = 8
  public var minScaleFactor = 0.5
  public var maxScaleFactor = 2.0
  public var scaleFactorStepSize = 0.25
  public var flipProbability = 0.5
  public var shuffle = true

  // Length of training
  public var trainingNumberOfSteps = 30000
  public var epochs: Int? = nil

  // Learning rate
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

  // Optimizer
  public var optimizer = OptimizerKind.sgd
  public var momentum = 0.9
  public var nesterov = false
  public var weightDecay = 0.00004
  public var adamBeta1 = 0.9
  public var adamBeta2 = 0.999
  public var adamEpsilon = 1e-8
  public var gradientAccumulation = 1
  public var gradientClipNorm: Double? = nil
  public var noDecayOnBiasAndNorm = false

  // Initialisation and fine-tuning
  public var initialCheckpoint: String? = nil
  public var initializeLastLayer = true
  public var lastLayersContainLogitsOnly = false
  public var fineTuneBatchNorm = true
  public var lastLayerGradientMultiplier = 1.0

  // Loss
  public var loss = LossKind.auto
  public var topKPercentPixels = 1.0
  public var hardExampleMiningStep = 0
  public var auxLossWeight = 0.4
  public var classWeights: [Double]? = nil
  public var upsampleLogits = true
  public var balancedLossNormalization = BalancedLossNormalization.sum

  // Evaluation
  public var evalCropSize: [Int]? = nil
  public var evalBatchSize = 1
  public var evalScales = [1.0]
  public var addFlippedImages = false

  // Run
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

  public init() {}

  // MARK: Derived values

  /// Optimizer steps for a training split of `samples` images: `epochs` full passes when
  /// set (an incomplete last batch is dropped), else `training_number_of_steps`.
  public func totalSteps(trainingSamples samples: Int) -> Int {
    guard let epochs else { return trainingNumberOfSteps }
    return epochs * Swift.max(1, samples / (trainBatchSize * gradientAccumulation))
  }

  /// The learning-rate schedule over `totalSteps` optimizer steps.
  public func learningRateSchedule(totalSteps: Int) throws -> LearningRateSchedule {
    let decay: LearningRateSchedule.Decay
    switch learningPolicy {
    case .poly: decay = .poly(base: baseLearningRate, maxSteps: totalSteps, power: learningPower, end: endLearningRate)
    case .step: decay = .step(base: baseLearningRate, factor: learningRateDecayFactor, every: learningRateDecayStep)
    case .piecewise: decay = .piecewise(boundaries: learningRateBoundaries, values: learningRateValues)
    case .cosine: decay = .cosine(base: baseLearningRate, maxSteps: totalSteps, minimum: endLearningRate)
    }
    return try LearningRateSchedule(decay, warmupSteps: warmupSteps, warmupStartFactor: warmupStartFactor,
                                    slowStartSteps: slowStartStep, slowStartLearningRate: slowStartLearningRate)
  }

  /// The configured optimizer over `groups`.
  public func makeOptimizer(_ groups: [ParameterGroup]) throws -> Optimizer {
    switch optimizer {
    case .sgd: return try SGD(groups, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
    case .adam: return try Adam(groups, beta1: adamBeta1, beta2: adamBeta2, eps: adamEpsilon, weightDecay: weightDecay)
    case .adamw: return try AdamW(groups, beta1: adamBeta1, beta2: adamBeta2, eps: adamEpsilon, weightDecay: weightDecay)
    }
  }

  /// The device to train on: "auto" picks the first CUDA device when there is one, else the CPU.
  public func resolvedDevice() throws -> Device {
    do { return try Device.resolve(device) } catch { throw TrainingError("'device': \(error)") }
  }
}
