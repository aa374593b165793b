import Foundation
import Yams

// MARK: - Values

/// A type a setting can have: read from a YAML node, written as YAML text.
protocol ConfigValue {
  static var typeDescription: String { get }
  /// nil when the node does not hold a value of this type.
  init?(configNode: Node)
  var yamlText: String { get }
}

/// A plain scalar read from its text.
protocol ConfigScalar: ConfigValue {
  static var pluralDescription: String { get }
  init?(configText: String)
}

extension ConfigScalar {
  init?(configNode: Node) {
    guard case .scalar(let scalar) = configNode, !scalar.isNull else { return nil }
    self.init(configText: scalar.string)
  }
}

extension Node.Scalar {
  /// YAML's null: empty, ~ or null, unquoted.
  var isNull: Bool {
    style == .plain && ["", "~", "null", "Null", "NULL"].contains(string)
  }
}

extension Int: ConfigScalar {
  static var typeDescription: String { "an integer" }
  static var pluralDescription: String { "integers" }
  init?(configText: String) { self.init(configText.replacingOccurrences(of: "_", with: "")) }
  var yamlText: String { String(self) }
}

extension Double: ConfigScalar {
  static var typeDescription: String { "a number" }
  static var pluralDescription: String { "numbers" }
  init?(configText: String) {
    guard let value = Double(configText.replacingOccurrences(of: "_", with: "")), value.isFinite else { return nil }
    self = value
  }

  /// Shortest round-trip text, with a dot before any exponent: YAML 1.1 readers
  /// (PyYAML) take "1e-05" for a string but "1.0e-05" for a float.
  var yamlText: String {
    var text = "\(self)"
    if let e = text.firstIndex(where: { $0 == "e" || $0 == "E" }), !text[..<e].contains(".") {
      text.insert(contentsOf: ".0", at: e)
    }
    return text
  }
}

extension Bool: ConfigScalar {
  static var typeDescription: String { "true or false" }
  static var pluralDescription: String { "booleans" }
  init?(configText: String) {
    switch configText.lowercased() {
    case "true", "yes", "on": self = true
    case "false", "no", "off": self = false
    default: return nil
    }
  }
  var yamlText: String { self ? "true" : "false" }
}

extension String: ConfigScalar {
  static var typeDescription: String { "a string" }
  static var pluralDescription: String { "strings" }
  init?(configText: String) { self = configText }

  /// Plain when YAML reads it back as the same string, else double-quoted.
  var yamlText: String {
    let plainSafe = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "_-./"))
    // Words YAML 1.1 reads as null, booleans or numbers; a leading digit may make a date or a number.
    let resolvesElsewhere = ["~", "null", "Null", "NULL"].contains(self) || Bool(configText: self) != nil
      || Double(configText: self) != nil || first.map { $0.isNumber || $0 == "." || $0 == "-" } ?? true
    if unicodeScalars.allSatisfy(plainSafe.contains), !resolvesElsewhere {
      return self
    }
    return doubleQuoted
  }
}

extension RawRepresentable where Self: CaseIterable, RawValue == String {
  static var typeDescription: String { "one of " + allCases.map(\.rawValue).joined(separator: ", ") }
  static var pluralDescription: String { "values among " + allCases.map(\.rawValue).joined(separator: ", ") }
  init?(configText: String) { self.init(rawValue: configText.lowercased()) }
  var yamlText: String { rawValue }
}

extension TrainingConfig.LearningPolicy: ConfigScalar {}
extension TrainingConfig.OptimizerKind: ConfigScalar {}
extension TrainingConfig.LossKind: ConfigScalar {}
extension TrainingConfig.BalancedLossNormalization: ConfigScalar {}
extension TrainingConfig.SideLossSchedule: ConfigScalar {}
extension ModelManifest.Task: ConfigScalar {}
extension MaskRNN.Fusion: ConfigScalar {}
extension MaskRNN.LocaliserFeatures: ConfigScalar {}
extension TrainingConfig.MaskRNNVariant: ConfigScalar {}

extension Array: ConfigValue where Element: ConfigScalar {
  static var typeDescription: String { "a list of \(Element.pluralDescription)" }

  /// A YAML list, or one value, or values separated by commas ("6,12,18" on the command line).
  init?(configNode: Node) {
    switch configNode {
    case .sequence(let sequence):
      var values: [Element] = []
      for item in sequence {
        guard let value = Element(configNode: item) else { return nil }
        values.append(value)
      }
      self = values
    case .scalar(let scalar) where !scalar.isNull:
      var values: [Element] = []
      for part in scalar.string.split(separator: ",", omittingEmptySubsequences: false) {
        guard let value = Element(configText: part.trimmingCharacters(in: .whitespaces)) else { return nil }
        values.append(value)
      }
      self = values
    default:
      return nil
    }
  }

  var yamlText: String { "[" + map(\.yamlText).joined(separator: ", ") + "]" }
}

extension Optional: ConfigValue where Wrapped: ConfigValue {
  static var typeDescription: String { "\(Wrapped.typeDescription) or null" }

  init?(configNode: Node) {
    if case .scalar(let scalar) = configNode, scalar.isNull {
      self = .none
      return
    }
    guard let value = Wrapped(configNode: configNode) else { return nil }
    self = .some(value)
  }

  var yamlText: String { map(\.yamlText) ?? "null" }
}
