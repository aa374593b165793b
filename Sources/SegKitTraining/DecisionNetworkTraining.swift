import Foundation


/// Trains DVSNet's decision network on decision samples as DVSNet does: mean squared
/// error of the predicted score, Adam, the learning rate × `decay` after each epoch,
/// shuffled batches; the training and validation root-mean-square errors after each
/// epoch, and the weights of the epoch with the lowest validation error.
///
/// The samples are a few thousand small feature maps held in memory, so this is an
/// epoch loop of its own rather than the image `TrainingLoop`, and it has no resume:
/// a run of 100 epochs takes about a minute on a CPU.
public struct DecisionNetworkTraining {
  public var epochs = 100
  public var batchSize = 32
  public var learningRate = 0.002
  public var decay = 0.99
  public var dropout = 0.5
  public var grid = Size2(4, 8)
  public var seed: UInt64 = 0

  public init() {}

  public struct Epoch: Sendable {
    public let epoch: Int
    public let trainRMS: Double
    public let validationRMS: Double
  }

  /// The trained network (the best epoch's weights) and each epoch's errors.
  public func train(_ training: DecisionSamples, validation: DecisionSamples, report: (Epoch) -> Void = { _ in })
    throws -> (network: DecisionNetwork, history: [Epoch], best: Epoch)
  {
    guard epochs >= 1, batchSize >= 1, learningRate > 0, (0...1).contains(decay) else {
      throw TrainingError("decision training: epochs \(epochs), batch \(batchSize), learning rate \(learningRate), decay \(decay) are not a schedule")
    }
    guard training.count >= 1, validation.count >= 1 else {
      throw TrainingError("decision training needs training and validation samples (got \(training.count) and \(validation.count))")
    }
    guard training.features.shape[1] == validation.features.shape[1] else {
      throw TrainingError("training features have \(training.features.shape[1]) channels, validation \(validation.features.shape[1])")
    }
    try checkMemory(for: training)
    Torch.manualSeed(seed)
    let network = try DecisionNetwork(featureChannels: training.features.shape[1], grid: grid, dropout: dropout,
                                      initialScore: try training.scores.mean().item())
    let optimizer = try Adam(parameters: network.parameters())
    var random = SeededRandom(seed: seed)
    var history: [Epoch] = []
    var best: (epoch: Epoch, state: [(String, Tensor)])?
    for epoch in 1...epochs {
      network.train()
      let rate = learningRate * pow(decay, Double(epoch - 1))
      let order = random.permutation(training.count)
      var (squared, seen) = (0.0, 0)
      for start in stride(from: 0, to: order.count, by: batchSize) {
        let indices = try Tensor(order[start..<min(order.count, start + batchSize)].map(Int64.init), shape: [min(batchSize, order.count - start)])
        let predicted = try network.forward(try training.features.indexSelect(dim: 0, index: indices))
        let loss = try (predicted - training.scores.indexSelect(dim: 0, index: indices)).pow(2).mean()
        try optimizer.zeroGrad()
        try loss.backward()
        try optimizer.step(learningRate: rate)
        squared += try loss.item() * Double(indices.count)
        seen += indices.count
      }
      let validationRMS = try rms(network, validation)
      let record = Epoch(epoch: epoch, trainRMS: (squared / Double(seen)).squareRoot(), validationRMS: validationRMS)
      history.append(record)
      report(record)
      if best == nil || validationRMS < best!.epoch.validationRMS {
        best = (record, try network.stateDict().map { ($0.0, try $0.1.clone()) })
      }
    }
    try network.loadStateDict(try StateDict(best!.state))
    network.eval()
    return (network, history, best!.epoch)
  }

  /// Refuses training on `samples` when it is estimated to take more than
  /// `MemoryBudget`'s cap: the network's weights, gradients and Adam's two moments
  /// (float32), then a batch's features resized to the grid, before anything is built.
  public func checkMemory(for samples: DecisionSamples) throws {
    let channels = samples.features.shape[1]
    let parameters = DecisionNetwork.parameterCount(featureChannels: channels, grid: grid)
    let batch = max(1, min(batchSize, samples.count))
    let activations = batch * (channels + 96) * grid.height * grid.width * 4 * 3
    try MemoryBudget.check(16 * parameters + activations,
                           for: "training a decision network on \(channels) feature channels with a \(grid.height)×\(grid.width) grid")
  }

  /// The root-mean-square error of the network's predictions (evaluation mode).
  public func rms(_ network: DecisionNetwork, _ samples: DecisionSamples) throws -> Double {
    network.eval()
    return try Torch.withNoGrad {
      var squared = 0.0
      for start in stride(from: 0, to: samples.count, by: 256) {
        let length = min(256, samples.count - start)
        let predicted = try network.forward(try samples.features.narrow(dim: 0, start: start, length: length))
        squared += try (predicted - samples.scores.narrow(dim: 0, start: start, length: length)).pow(2).sum().item()
      }
      return (squared / Double(samples.count)).squareRoot()
    }
  }
}
