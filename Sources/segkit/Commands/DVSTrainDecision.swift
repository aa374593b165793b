import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor
import SegKitTraining

struct DVSTrainDecision: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train-decision",
    abstract: "Train DVSNet's decision network on decision samples; keeps the epoch with the lowest validation error.",
    discussion: """
      DVSNet's recipe by default: mean squared error of the predicted confidence score, Adam \
      at 0.002 × 0.99 per epoch, batch 32, dropout 0.5, 100 epochs. Prints the training and \
      validation root-mean-square errors per epoch; writes OUT/decision.safetensors (the best \
      epoch by validation error) and OUT/history.csv.
      """)

  @Option(help: "Training samples (`segkit dvs features` on the training split).")
  var train: String

  @Option(help: "Validation samples.")
  var val: String

  @Option(help: "Output folder.")
  var out: String

  @Option(help: "Epochs.") var epochs = 100
  @Option(help: "Batch size.") var batchSize = 32
  @Option(help: "Initial learning rate.") var learningRate = 0.002
  @Option(help: "Learning-rate factor per epoch.") var decay = 0.99
  @Option(help: "The grid the features are resized to, HxW (DVSNet: 4x8; its TensorFlow variant: 4x5).") var grid = "4x8"
  @Option(help: "Dropout after the first three fully connected layers (DVSNet: 0.5, a keep probability of 0.5).") var dropout = 0.5
  @Option(help: "Random seed.") var seed: UInt64 = 0
  @OptionGroup var memory: MemoryLimitArgument

  func run() throws {
    Torch.keepFreedMemory()
    try memory.apply()
    guard (0..<1).contains(dropout) else { throw ValidationError("--dropout must be in [0, 1), got \(dropout)") }
    let size = grid.lowercased().split(separator: "x").compactMap { Int($0) }
    guard size.count == 2, size.allSatisfy({ (1...64).contains($0) }) else { throw ValidationError("--grid '\(grid)' is not HxW (1 to 64 each)") }
    let folder = URL(fileURLWithPath: out)
    try createFolder(folder)
    let training = try DecisionSamples.read(URL(fileURLWithPath: train))
    let validation = try DecisionSamples.read(URL(fileURLWithPath: val))
    if let a = training.segmentation, let b = validation.segmentation, a.fingerprint != b.fingerprint {
      throw ValidationError("--train \(train) holds samples of \(a), --val \(val) of \(b): both must come from one segmentation network")
    }
    if training.featureLayer != validation.featureLayer {
      throw ValidationError("--train \(train) holds \(training.featureLayer?.rawValue ?? "unnamed") features, --val \(val) \(validation.featureLayer?.rawValue ?? "unnamed"): both must come from one flow layer")
    }
    var trainer = DecisionNetworkTraining()
    (trainer.epochs, trainer.batchSize, trainer.learningRate, trainer.decay, trainer.seed) = (epochs, batchSize, learningRate, decay, seed)
    trainer.grid = Size2(size[0], size[1])
    trainer.dropout = dropout
    print("decision network on \(training.count) training and \(validation.count) validation samples, \(epochs) epochs")
    let start = Date()
    let (network, history, best) = try trainer.train(training, validation: validation) { epoch in
      if epoch.epoch == 1 || epoch.epoch % 10 == 0 || epoch.epoch == epochs {
        print(String(format: "epoch %d/%d: train RMS %.3f, val RMS %.3f", epoch.epoch, epochs, epoch.trainRMS, epoch.validationRMS))
        fflush(stdout)
      }
    }
    let weights = folder.appendingPathComponent("decision.safetensors")
    let percentiles = DynamicKeyFrameEvaluation.targetPercentiles
    let info = DecisionNetworkFile.Info(segmentation: training.segmentation, featureLayer: training.featureLayer,
                                        scorePercentiles: Array(zip(percentiles, try training.scorePercentiles(percentiles))).map { ($0.0, $0.1) })
    try DecisionNetworkFile.write(network, to: weights, info: info, metadata: ["epoch": String(best.epoch)])
    let csv = "epoch,train_rms,val_rms\n" + history.map { String(format: "%d,%.4f,%.4f", $0.epoch, $0.trainRMS, $0.validationRMS) }.joined(separator: "\n") + "\n"
    let csvURL = folder.appendingPathComponent("history.csv")
    do { try AtomicFile.write(Data(csv.utf8), to: csvURL) } catch {
      throw CommandError("\(csvURL.path): cannot be written (\(error.localizedDescription))")
    }
    // The spread of the targets: an RMS error is only small against it.
    let spread = try Torch.withNoGrad { try (validation.scores - validation.scores.mean()).pow(2).mean().item().squareRoot() }
    print(String(format: "best epoch %d: val RMS %.3f (the validation scores' own standard deviation: %.3f); %.1f s", best.epoch,
                 best.validationRMS, spread, Date().timeIntervalSince(start)))
    print("weights: \(weights.path)")
  }
}
