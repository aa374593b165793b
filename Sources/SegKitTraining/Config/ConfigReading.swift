import Foundation
import Yams

extension TrainingConfig {
  // MARK: Loading

  /// Defaults, then the file (if any), then `key=value` overrides, then validation.
  /// `defaults`: the values before the file (a command's own, e.g. `segkit vos train`'s task foreground).
  public static func resolve(file: URL?, overrides: [String] = [], defaults: TrainingConfig = TrainingConfig()) throws
    -> TrainingConfig
  {
    var config = defaults
    if let file { try config.apply(contentsOf: file) }
    try config.apply(overrides: overrides)
    try config.validate()
    return config
  }

  /// Applies the settings of a YAML file over the current values.
  public mutating func apply(contentsOf url: URL) throws {
    let text: String
    do {
      let size = (try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? NSNumber)?.intValue ?? 0
      guard size <= Self.maximumConfigBytes else {
        throw TrainingError("the configuration \(url.path) is \(size) bytes, over the limit of \(Self.maximumConfigBytes) for a file of settings")
      }
      text = try String(contentsOf: url, encoding: .utf8)
    } catch let error as TrainingError {
      throw error
    } catch {
      throw TrainingError("cannot read the configuration \(url.path): \(RunLayout.reason(error))")
    }
    try apply(yaml: text, source: url.path)
  }

  /// Applies the settings of YAML text (a flat mapping) over the current values;
  /// `source` names it in errors. Nothing changes unless every setting is valid.
  public mutating func apply(yaml text: String, source: String = "configuration") throws {
    try Self.checkNesting(text, source: source)
    let root: Node?
    do {
      root = try Yams.compose(yaml: text)
    } catch {
      throw TrainingError("\(source): not valid YAML: \(error)")
    }
    guard let root else { return }  // an empty file changes nothing
    guard case .mapping(let mapping) = root else {
      throw TrainingError("\(source): expected a mapping of settings (key: value), not \(Self.kind(of: root))")
    }
    var pairs: [(key: String, value: Node, line: Int?)] = []
    for (keyNode, value) in mapping {
      guard case .scalar(let key) = keyNode else {
        throw TrainingError("\(Self.place(source, keyNode)): setting names must be plain keys")
      }
      if let earlier = pairs.first(where: { $0.key == key.string }) {
        let line = earlier.line.map { " (first on line \($0))" } ?? ""
        throw TrainingError("\(Self.place(source, keyNode)): '\(key.string)' is set twice\(line)")
      }
      pairs.append((key.string, value, keyNode.mark?.line))
    }
    var updated = self
    // The task first: it decides which other keys are allowed.
    if let task = pairs.first(where: { $0.key == "task" }) {
      try updated.assign(task.key, task.value, place: Self.place(source, task.value))
    }
    try Self.rejectUnknown(pairs.map(\.key), task: updated.task, source: source)
    for pair in pairs where pair.key != "task" {
      try updated.assign(pair.key, pair.value, place: Self.place(source, pair.value))
    }
    self = updated
  }

  /// Applies `key=value` overrides (the `--set` arguments). A value is read as YAML
  /// (`[513, 513]`, `null`, `1e-3`); lists may also be written `6,12,18`.
  public mutating func apply(overrides: [String]) throws {
    var parsed: [(key: String, value: String)] = []
    for text in overrides {
      guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
        throw TrainingError("--set \(text): expected key=value")
      }
      parsed.append((text[..<equals].trimmingCharacters(in: .whitespaces),
                     String(text[text.index(after: equals)...]).trimmingCharacters(in: .whitespaces)))
    }
    var updated = self
    for (key, value) in parsed where key == "task" { try updated.set(key, to: value) }
    try Self.rejectUnknown(parsed.map(\.key), task: updated.task, source: "--set")
    for (key, value) in parsed where key != "task" { try updated.set(key, to: value) }
    self = updated
  }

  /// Sets one setting from its text, as `--set key=value` or a `--key value` flag.
  public mutating func set(_ key: String, to value: String) throws {
    try Self.rejectUnknown([key], task: key == "task" ? nil : task, source: "--set")
    let place = "--set \(key)=\(value)"
    guard let setting = Self.table.first(where: { $0.key == key }) else { return }
    if setting.takesRawText {
      try assign(setting, Node(value, .implicit, value.isEmpty && setting.isPlainString ? .doubleQuoted : .plain), place: place)
      return
    }
    let node: Node
    do {
      try Self.checkNesting(value, source: place)
      node = try Yams.compose(yaml: value) ?? Node("", .implicit, .plain)
    } catch {
      throw TrainingError("\(place): '\(key)' expects \(setting.type), got text that is not a YAML value (\(error))")
    }
    try assign(setting, node, place: place)
  }

  private mutating func assign(_ key: String, _ node: Node, place: String) throws {
    guard let setting = Self.table.first(where: { $0.key == key }) else { return }
    try assign(setting, node, place: place)
  }

  private mutating func assign(_ setting: Setting, _ node: Node, place: String) throws {
    let key = setting.key
    guard setting.assign(&self, node) else {
      throw TrainingError("\(place): '\(key)' expects \(setting.type), got \(Self.describe(node))")
    }
  }

  /// Keys that are no setting, or a setting of another task than `task` (nil: any
  /// task), are errors naming each with the closest key of the task.
  private static func rejectUnknown(_ keys: [String], task: ModelManifest.Task?, source: String) throws {
    let allowed = task.map { Self.keys(for: $0) } ?? Self.keys
    let rejected = keys.filter { !allowed.contains($0) }
    guard !rejected.isEmpty else { return }
    let described = rejected.map { key -> String in
      let suggestion = suggestion(for: key, among: allowed).map { " (did you mean '\($0)'?)" } ?? ""
      if let owner = table.first(where: { $0.key == key })?.task, let task {
        return "'\(key)' (a setting of task \(owner.rawValue), and this configuration's task is \(task.rawValue))\(suggestion)"
      }
      return "'\(key)'\(suggestion)"
    }
    let noun = rejected.count == 1 ? "setting" : "settings"
    throw TrainingError("\(source): unknown \(noun) \(described.joined(separator: ", ")); `segkit train --help` lists them all")
  }

  /// The key among `candidates` closest to `key`: an alias, or one within a few edits.
  static func suggestion(for key: String, among candidates: [String] = keys) -> String? {
    let query = key.lowercased().replacingOccurrences(of: "-", with: "_")
    if let alias = aliases[query], candidates.contains(alias) { return alias }
    if candidates.contains(query) { return query }
    let scored = candidates.filter { $0 != key }.map { ($0, Spelling.editDistance(query, $0)) }
      .min { ($0.1, $0.0) < ($1.1, $1.0) }
    guard let (best, distance) = scored, distance <= max(2, query.count / 3) else { return nil }
    return best
  }

  private static func place(_ source: String, _ node: Node) -> String {
    guard let line = node.mark?.line else { return source }
    return "\(source):\(line)"
  }

  private static func kind(of node: Node) -> String {
    switch node {
    case .scalar: return "a single value"
    case .sequence: return "a list"
    case .mapping: return "a nested mapping"
    }
  }

  private static func describe(_ node: Node) -> String {
    switch node {
    case .scalar(let scalar): return "'\(scalar.string)'"
    default: return kind(of: node)
    }
  }

  /// A file of settings larger than this is refused before it is read.
  public static let maximumConfigBytes = 1 << 20
  /// Settings are a flat mapping whose values are at most lists; YAML nested deeper
  /// than this is refused before the parser (which recurses) sees it.
  public static let maximumNesting = 64

  /// Refuses text nested deeper than `maximumNesting`, counting open flow brackets,
  /// a line's indentation and its block-sequence dashes: a generous over-estimate of
  /// YAML's depth that no configuration comes near.
  static func checkNesting(_ text: String, source: String) throws {
    var brackets = 0
    for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
      let indentation = line.prefix { $0 == " " || $0 == "\t" }.count
      var dashes = 0, depth = 0
      var rest = line.dropFirst(indentation)
      while rest.hasPrefix("- ") || rest == "-" {
        dashes += 1
        rest = rest.dropFirst(2).drop { $0 == " " }
      }
      for character in rest {
        if character == "[" || character == "{" { brackets += 1 }
        if character == "]" || character == "}" { brackets = max(0, brackets - 1) }
        depth = max(depth, brackets)
      }
      if indentation + dashes + depth > maximumNesting {
        throw TrainingError("\(source): nested deeper than \(maximumNesting) levels; settings are a flat mapping of values and lists")
      }
    }
  }
}
