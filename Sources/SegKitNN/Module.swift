import Foundation

/// A node of a network: named parameters, buffers and child modules, registered
/// explicitly under PyTorch's names so that state dicts match torch's key for key.
///
/// The registry is the single owner of a module's tensors: layers read them back
/// through `parameter(_:)` / `buffer(_:)` instead of keeping their own references.
/// `to(device:dtype:)` can then swap in converted tensors (a `Tensor` cannot change
/// device or dtype in place) and every layer sees them. Optimizers hold tensors
/// directly, so build them after moving the model, as in PyTorch.
open class Module {
  private var ownParameters: [(name: String, tensor: Tensor)] = []
  private var ownBuffers: [(name: String, tensor: Tensor, persistent: Bool)] = []
  private var children: [(name: String, module: Module)] = []

  public private(set) var isTraining = true

  public init() {}

  // MARK: Registration

  /// Registers a trainable tensor under `name` (its requiresGrad is set) and returns it.
  @discardableResult
  public func registerParameter(_ name: String, _ tensor: Tensor) throws -> Tensor {
    precondition(isFreeName(name), "\(typeName): '\(name)' is not a valid new attribute name")
    try tensor.requiresGrad(true)
    ownParameters.append((name, tensor))
    return tensor
  }

  /// Registers state that is not trained (running statistics, counters). Non-persistent
  /// buffers move with the module but stay out of the state dict.
  @discardableResult
  public func registerBuffer(_ name: String, _ tensor: Tensor, persistent: Bool = true) -> Tensor {
    precondition(isFreeName(name), "\(typeName): '\(name)' is not a valid new attribute name")
    ownBuffers.append((name, tensor, persistent))
    return tensor
  }

  /// Registers a child; children are visited in registration order.
  @discardableResult
  public func registerModule<M: Module>(_ name: String, _ module: M) -> M {
    precondition(isFreeName(name), "\(typeName): '\(name)' is not a valid new attribute name")
    children.append((name, module))
    return module
  }

  private func isFreeName(_ name: String) -> Bool {
    !name.isEmpty && !name.contains(".")
      && !ownParameters.contains { $0.name == name }
      && !ownBuffers.contains { $0.name == name }
      && !children.contains { $0.name == name }
  }

  var typeName: String { String(describing: type(of: self)) }

  // MARK: Own entries

  /// This module's own parameter `name` (not a child's).
  public func parameter(_ name: String) -> Tensor? {
    ownParameters.first { $0.name == name }?.tensor
  }

  /// This module's own buffer `name` (not a child's).
  public func buffer(_ name: String) -> Tensor? {
    ownBuffers.first { $0.name == name }?.tensor
  }

  public func child(_ name: String) -> Module? {
    children.first { $0.name == name }?.module
  }

  public var namedChildren: [(String, Module)] { children.map { ($0.name, $0.module) } }

  // MARK: Recursive views

  /// Every module of the tree, this one first under "", each once, depth first.
  public func namedModules() -> [(String, Module)] {
    var seen = Set<ObjectIdentifier>()
    var result: [(String, Module)] = []
    func visit(_ module: Module, _ prefix: String) {
      guard seen.insert(ObjectIdentifier(module)).inserted else { return }
      result.append((prefix, module))
      for (name, child) in module.children { visit(child, qualified(prefix, name)) }
    }
    visit(self, "")
    return result
  }

  public func modules() -> [Module] { namedModules().map { $0.1 } }

  /// Every parameter of the tree under its dotted name, each tensor once.
  public func namedParameters() -> [(String, Tensor)] {
    uniqueMembers { $0.ownParameters.map { ($0.name, $0.tensor) } }
  }

  public func parameters() -> [Tensor] { namedParameters().map { $0.1 } }

  /// Every buffer of the tree, persistent or not, each tensor once.
  public func namedBuffers() -> [(String, Tensor)] {
    uniqueMembers { $0.ownBuffers.map { ($0.name, $0.tensor) } }
  }

  private func uniqueMembers(_ members: (Module) -> [(String, Tensor)]) -> [(String, Tensor)] {
    var seen = Set<ObjectIdentifier>()
    return namedModules().flatMap { prefix, module in
      members(module).compactMap { name, tensor in
        seen.insert(ObjectIdentifier(tensor)).inserted ? (qualified(prefix, name), tensor) : nil
      }
    }
  }

  /// The state dict in torch's order: each module's parameters, then its persistent
  /// buffers, then its children recursively. Values are detached and share storage.
  public func stateDict() throws -> [(String, Tensor)] {
    try stateEntries().map { ($0.0, try $0.1.detach()) }
  }

  /// The live tensors behind the state dict (no de-duplication, as in torch).
  func stateEntries(prefix: String = "") -> [(String, Tensor)] {
    ownParameters.map { (qualified(prefix, $0.name), $0.tensor) }
      + ownBuffers.filter(\.persistent).map { (qualified(prefix, $0.name), $0.tensor) }
      + children.flatMap { $0.module.stateEntries(prefix: qualified(prefix, $0.name)) }
  }

  // MARK: Modes

  /// Switches the tree between training and evaluation behaviour (dropout, batch norm).
  @discardableResult
  public func train(_ on: Bool = true) -> Self {
    for module in modules() { module.isTraining = on }
    if on { discardBatchNormFolding() }
    return self
  }

  @discardableResult
  public func eval() -> Self { train(false) }

  /// Stops training this subtree: its parameters no longer require gradients. With
  /// `batchNormStatistics`, its batch-norm layers also normalise with (and keep) their
  /// running statistics even in training mode, as DeepLab's fine_tune_batch_norm=false.
  public func freeze(batchNormStatistics: Bool = false) throws {
    for tensor in parameters() { try tensor.requiresGrad(false) }
    if batchNormStatistics {
      for case let norm as BatchNorm2d in modules() { norm.statisticsFrozen = true }
    }
  }

  /// Undoes `freeze`: parameters train again and batch-norm statistics update again.
  public func unfreeze() throws {
    for tensor in parameters() { try tensor.requiresGrad(true) }
    for case let norm as BatchNorm2d in modules() { norm.statisticsFrozen = false }
  }

  public func zeroGrad(setToNone: Bool = true) throws {
    for tensor in parameters() { try tensor.zeroGrad(setToNone: setToNone) }
  }

  // MARK: Sizes

  public var parameterCount: Int { parameters().reduce(0) { $0 + $1.count } }

  public var trainableParameterCount: Int {
    parameters().filter(\.requiresGrad).reduce(0) { $0 + $1.count }
  }

  // MARK: Device and dtype

  /// Moves every parameter and buffer of the tree to `device` and/or converts its
  /// floating-point ones to `dtype` (integer buffers keep their dtype, as in torch),
  /// and/or lays out its 4-D tensors in `memoryFormat` (channels-last convolution
  /// weights speed up CPU inference on channels-last input).
  /// The registry entries are replaced; parameters keep their requiresGrad and gradient.
  @discardableResult
  public func to(device: Device? = nil, dtype: DType? = nil, memoryFormat: Tensor.MemoryFormat? = nil) throws -> Self {
    if let dtype, !dtype.isFloatingPoint {
      throw NNError("Module.to only accepts floating-point dtypes, got \(dtype)")
    }
    // Tensors shared between modules (tied weights) stay shared: each is converted once.
    // The originals are kept too, so that no identifier is reused while converting.
    var replacements: [ObjectIdentifier: (original: Tensor, result: Tensor)] = [:]
    func converted(_ tensor: Tensor) throws -> Tensor {
      if let done = replacements[ObjectIdentifier(tensor)] { return done.result }
      let targetDevice = device ?? tensor.device
      let targetDType = tensor.dtype.isFloatingPoint ? dtype ?? tensor.dtype : tensor.dtype
      var result = tensor
      let relayout = memoryFormat.map { tensor.rank == 4 && !tensor.isLaidOut($0) } ?? false
      if targetDevice != tensor.device || targetDType != tensor.dtype || relayout {
        result = try tensor.detach().to(dtype: targetDType, device: targetDevice)
        if let memoryFormat, relayout { result = try result.contiguous(memoryFormat) }
        if tensor.requiresGrad { try result.requiresGrad(true) }
        if let grad = tensor.grad { try result.setGrad(try converted(grad)) }
      }
      replacements[ObjectIdentifier(tensor)] = (tensor, result)
      return result
    }
    try Torch.withNoGrad {
      for module in modules() {
        for i in module.ownParameters.indices {
          module.ownParameters[i].tensor = try converted(module.ownParameters[i].tensor)
        }
        for i in module.ownBuffers.indices {
          module.ownBuffers[i].tensor = try converted(module.ownBuffers[i].tensor)
        }
        // Inference rewrites follow the weights they were made from.
        if let conv = module as? Conv2d, let folded = conv.folded {
          conv.folded = (try converted(folded.weight), try converted(folded.bias))
        }
        if let deconvolution = module as? ConvTranspose2d, let diagonal = deconvolution.depthwiseDiagonal {
          deconvolution.depthwiseDiagonal = try converted(diagonal)
        }
        if let conv = module as? Conv2d, conv.int8 != nil, device.map({ $0 != .cpu }) ?? false || dtype.map({ $0 != .float32 }) ?? false {
          conv.int8 = nil  // int8 kernels run float32 CPU models only
        }
      }
    }
    return self
  }
}

func qualified(_ prefix: String, _ name: String) -> String {
  prefix.isEmpty ? name : "\(prefix).\(name)"
}
