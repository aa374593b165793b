import ArgumentParser
import Foundation
import SegKitInference
import SegKitTraining

/// How a parent is fine-tuned on a sequence's first frame (`segkit vos segment`).
struct FineTuningArguments: ParsableArguments {
  @Option(help: "Fine-tuning steps per object (OSVOS: 100 unless given; MaskRNN: no fine-tuning unless given).")
  var steps: Int?

  @Option(help: "Fine-tuning learning rate.")
  var learningRate = 1e-4

  @Option(help: "Fine-tuning optimizer: adam, or sgd (momentum 0.9).")
  var optimizer = "adam"

  @Option(help: "Differently augmented copies of the first frame whose gradients make one step.")
  var gradientAccumulation = 1

  @Option(help: "The balanced loss's normalisation: per_pixel (mean), per_image or sum (the references', with SGD at 1e-8).")
  var lossNormalization = "per_pixel"

  @Option(help: "Fine-tuning weight decay.")
  var weightDecay = 0.0

  @Flag(help: "OSVOS's per-layer learning rates (biases ×2, side scores ×0.1, fuse ×0.01, no decay on biases).")
  var referenceLearningRates = false

  @Option(help: "Arithmetic of the segmenting (fine-tuning is fp32): fp32 (exact, the default), bf16 (OSVOS, MaskRNN), or int8 (OSVOS: calibrated on each object's first frame; XMem: on each sequence's first 3 frames).")
  var precision = "fp32"

  func validate() throws {
    guard InferencePrecision(rawValue: precision) != nil else {
      throw ValidationError("--precision must be fp32, bf16 or int8, got '\(precision)'")
    }
    guard steps ?? 1 >= 1, learningRate > 0, learningRate.isFinite else {
      throw ValidationError("--steps must be at least 1 and --learning-rate positive")
    }
    guard FineTuningSettings.OptimizerKind(rawValue: optimizer) != nil else {
      throw ValidationError("--optimizer must be adam or sgd, not '\(optimizer)'")
    }
    guard TrainingConfig.BalancedLossNormalization(rawValue: lossNormalization) != nil else {
      throw ValidationError("--loss-normalization must be per_pixel, per_image or sum, not '\(lossNormalization)'")
    }
    guard gradientAccumulation >= 1, weightDecay >= 0, weightDecay.isFinite else {
      throw ValidationError("--gradient-accumulation must be at least 1 and --weight-decay non-negative")
    }
  }

  func settings(device: Device) -> FineTuningSettings {
    var settings = FineTuningSettings()
    (settings.steps, settings.learningRate, settings.device) = (steps ?? 100, learningRate, device)
    settings.optimizer = FineTuningSettings.OptimizerKind(rawValue: optimizer) ?? .adam
    settings.gradientAccumulation = gradientAccumulation
    settings.precision = InferencePrecision(rawValue: precision) ?? .fp32
    settings.normalization = TrainingConfig.BalancedLossNormalization(rawValue: lossNormalization)?.normalization ?? .perPixel
    (settings.weightDecay, settings.referenceLearningRates) = (weightDecay, referenceLearningRates)
    return settings
  }
}
