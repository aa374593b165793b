import ArgumentParser
import Foundation
import SegKitInference
import SegKitTensor

/// `segkit vos segment`'s method and what it reads: a parent for OSVOS and MaskRNN,
/// XMem's weights for XMem.
struct VOSMethodArguments: ParsableArguments {
  enum Method: String, ExpressibleByArgument, CaseIterable { case osvos, maskrnn, xmem }

  @Option(help: """
    osvos (one-shot fine-tuning per object), maskrnn (recurrent mask propagation) or xmem (memory reading, no \
    fine-tuning). Unless given: xmem with --weights, else the --parent's model.
    """)
  var method: Method?

  @Option(help: "The parent (osvos, maskrnn): a run folder (its model and latest checkpoint) or a weight file (with --model).")
  var parent: String?

  @Option(help: "The parent's model when --parent is a weight file.")
  var model = "osvos_vgg16"

  @Option(help: "XMem's weights (xmem): its released XMem.pth, or a training run's model.safetensors (its settings then the defaults).")
  var weights: String?

  @Option(help: "Write each frame's object probabilities as DIR/<sequence>/<frame>.safetensors, float32 [objects, H, W] (xmem).")
  var saveProbabilities: String?

  func validate() throws {
    switch (method, parent, weights) {
    case (.xmem?, _?, _): throw ValidationError("--method xmem reads --weights, not --parent")
    case (.xmem?, nil, nil): throw ValidationError("--method xmem needs --weights (XMem.pth)")
    case (.osvos?, _, _?), (.maskrnn?, _, _?): throw ValidationError("--weights is XMem's; --method \(method!.rawValue) reads --parent")
    case (nil, nil, nil), (.osvos?, nil, _), (.maskrnn?, nil, _): throw ValidationError("give --parent (OSVOS, MaskRNN) or --weights (XMem)")
    case (nil, _?, _?): throw ValidationError("--parent and --weights exclude each other: one method at a time")
    default: break
    }
    if saveProbabilities != nil, resolvedWithoutParent != .xmem {
      throw ValidationError("--save-probabilities is for --method xmem")
    }
  }

  /// The method, where the arguments alone say it.
  private var resolvedWithoutParent: Method? { method ?? (weights != nil ? .xmem : nil) }

  /// The method, and for OSVOS and MaskRNN the parent's model name and weight file.
  func resolved() throws -> (method: Method, parent: (model: String, weights: URL)?) {
    guard let parent else { return (.xmem, nil) }
    let (modelName, file) = try parentWeights(parent, model: model)
    let isMaskRNN = ModelFamily(name: modelName)?.isMaskRNN == true
    let fromModel: Method = isMaskRNN ? .maskrnn : .osvos
    if let method, method != fromModel {
      throw ValidationError("--method \(method.rawValue), but --parent \(parent) is \(modelName), a \(fromModel.rawValue) network")
    }
    return (fromModel, (modelName, file))
  }
}

/// XMem's memory settings (`segkit vos segment --method xmem`): those given, else the
/// training run's (model.json beside the weights), else XMem's defaults.
struct XMemArguments: ParsableArguments {
  @Option(parsing: .unconditional, help: "XMem: resize frames so that their shorter side is this (-1 keeps them; default 480).")
  var size: Int?
  @Option(help: "XMem: a memory frame every this many frames (default 5).")
  var memEvery: Int?
  @Option(help: "XMem: memory elements each query reads (default 30).")
  var topK: Int?
  @Option(help: "XMem: working memory is consolidated at this many frames (default 10).")
  var maxMidTermFrames: Int?
  @Option(help: "XMem: frames working memory keeps after consolidating, the first and the newest (default 5).")
  var minMidTermFrames: Int?
  @Option(help: "XMem: long-term elements made by each consolidation (default 128).")
  var numPrototypes: Int?
  @Option(help: "XMem: the cap on long-term memory (default 10000).")
  var maxLongTermElements: Int?
  @Flag(help: "XMem: no long-term memory (working memory then grows with the video).")
  var noLongTerm = false

  /// The settings given, over `run`'s (a training run's) or XMem's defaults.
  func settings(over run: XMemSettings? = nil) throws -> XMemSettings {
    var settings = run ?? XMemSettings()
    if let size { settings.size = size < 0 ? nil : size }
    settings.memEvery = memEvery ?? settings.memEvery
    settings.topK = topK ?? settings.topK
    settings.maxMidTermFrames = maxMidTermFrames ?? settings.maxMidTermFrames
    settings.minMidTermFrames = minMidTermFrames ?? settings.minMidTermFrames
    settings.prototypes = numPrototypes ?? settings.prototypes
    settings.maxLongTermElements = maxLongTermElements ?? settings.maxLongTermElements
    if noLongTerm { settings.longTerm = false }
    do { return try settings.validated() } catch let error as InferenceError { throw ValidationError(error.message) }
  }

  /// The settings a `task: memory` run kept in the model.json beside `weights`; nil for other weights.
  static func runSettings(besideWeights weights: URL) throws -> XMemSettings? {
    do { return try XMemSettings.ofRun(besideWeights: weights) } catch { throw ValidationError("--weights \(error)") }
  }
}
