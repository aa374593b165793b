/// What `loadStateDict` did. Names are the model's (after renaming).
public struct LoadReport: Equatable {
  /// Model entries that received a value.
  public var loaded: [String] = []
  /// Model entries the checkpoint lacks (only possible when not strict).
  public var missing: [String] = []
  /// Checkpoint entries the model has no place for (only possible when not strict).
  public var unexpected: [String] = []
  /// Model entries left as they were because `skip` chose them.
  public var skipped: [String] = []
}

/// Why a state dict could not be loaded; every problem is listed in one message.
public struct StateDictError: Error, CustomStringConvertible, Equatable {
  public struct ShapeMismatch: Equatable {
    public var name: String
    public var checkpointShape: [Int]
    public var modelShape: [Int]
  }

  public var moduleName: String
  public var missing: [String]
  public var unexpected: [String]
  public var mismatched: [ShapeMismatch]
  /// Names that more than one checkpoint entry mapped to after renaming.
  public var duplicated: [String]

  public var description: String {
    // A wrong checkpoint can miss hundreds of keys: show the first few of each kind.
    let shown = 12
    func quoted(_ names: [String]) -> String {
      let listed = names.prefix(shown).map { "\"\($0)\"" }.joined(separator: ", ")
      return names.count > shown ? "\(listed), … and \(names.count - shown) more (\(names.count) in all)" : listed
    }
    var lines = ["Error(s) in loading state dict for \(moduleName):"]
    if !missing.isEmpty { lines.append("  Missing key(s): \(quoted(missing)).") }
    if !unexpected.isEmpty { lines.append("  Unexpected key(s): \(quoted(unexpected)).") }
    for m in mismatched.prefix(shown) {
      lines.append("  Size mismatch for \(m.name): the checkpoint has shape \(m.checkpointShape), the model \(m.modelShape).")
    }
    if mismatched.count > shown { lines.append("  … and \(mismatched.count - shown) more size mismatches.") }
    if !duplicated.isEmpty { lines.append("  Several checkpoint entries map to: \(quoted(duplicated)).") }
    return lines.joined(separator: "\n")
  }
}

extension Module {
  /// Copies checkpoint values into the model's existing tensors (converting dtype and
  /// device), as torch's load_state_dict.
  ///
  /// - `rename` maps a checkpoint name to the model's name, or to nil to drop the entry.
  /// - `skip` picks model names to leave untouched (for example a classifier trained for
  ///   other classes): they are neither loaded nor missing, and checkpoint entries with
  ///   those names are ignored.
  /// - When `strict`, missing and unexpected names are errors; shape mismatches always are.
  ///   A missing `num_batches_tracked` is never an error (checkpoints before torch 0.4.1
  ///   lack it). Nothing is copied unless the whole load can succeed.
  @discardableResult
  public func loadStateDict<Entries: Sequence>(
    _ entries: Entries, strict: Bool = true, rename: ((String) -> String?)? = nil, skip: ((String) -> Bool)? = nil
  ) throws -> LoadReport where Entries.Element == (String, Tensor) {
    var incoming: [String: Tensor] = [:]
    var incomingOrder: [String] = []
    var duplicated: [String] = []
    for (key, value) in entries {
      let renamed: String? = if let rename { rename(key) } else { key }  // nil: dropped
      guard let name = renamed, skip?(name) != true else { continue }
      if incoming.updateValue(value, forKey: name) == nil {
        incomingOrder.append(name)
      } else if !duplicated.contains(name) {
        duplicated.append(name)
      }
    }

    var report = LoadReport()
    var mismatched: [StateDictError.ShapeMismatch] = []
    var copies: [(target: Tensor, source: Tensor)] = []
    let targets = stateEntries()
    for (name, target) in targets {
      if skip?(name) == true {
        report.skipped.append(name)
        continue
      }
      guard var source = incoming[name] else {
        if name.split(separator: ".").last != "num_batches_tracked" { report.missing.append(name) }
        continue
      }
      // Like torch, accept a one-element vector for a scalar (older checkpoints).
      if target.rank == 0 && source.shape == [1] { source = try source.reshape([]) }
      guard source.shape == target.shape else {
        mismatched.append(.init(name: name, checkpointShape: source.shape, modelShape: target.shape))
        continue
      }
      copies.append((target, source))
      report.loaded.append(name)
    }
    let targetNames = Set(targets.map { $0.0 })
    report.unexpected = incomingOrder.filter { !targetNames.contains($0) }

    if !mismatched.isEmpty || !duplicated.isEmpty || (strict && !(report.missing.isEmpty && report.unexpected.isEmpty)) {
      throw StateDictError(
        moduleName: typeName, missing: strict ? report.missing : [], unexpected: strict ? report.unexpected : [],
        mismatched: mismatched, duplicated: duplicated)
    }
    try Torch.withNoGrad {
      for (target, source) in copies { try target.copy_(source) }
    }
    discardBatchNormFolding()  // folded weights were computed from the old values
    return report
  }

  /// Loads from a dictionary; unexpected names are reported in sorted order.
  @discardableResult
  public func loadStateDict(
    _ entries: [String: Tensor], strict: Bool = true, rename: ((String) -> String?)? = nil,
    skip: ((String) -> Bool)? = nil
  ) throws -> LoadReport {
    try loadStateDict(entries.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, strict: strict, rename: rename, skip: skip)
  }

  /// Loads a state dict read from a weight file.
  @discardableResult
  public func loadStateDict(
    _ stateDict: StateDict, strict: Bool = true, rename: ((String) -> String?)? = nil, skip: ((String) -> Bool)? = nil
  ) throws -> LoadReport {
    try loadStateDict(stateDict.map { ($0.name, $0.tensor) }, strict: strict, rename: rename, skip: skip)
  }
}
