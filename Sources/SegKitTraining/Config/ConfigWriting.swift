import Foundation

extension TrainingConfig {
  // MARK: Writing

  /// The configuration as YAML, every setting of its task in table order under section comments.
  /// Reading it back gives an equal configuration.
  public func yaml() -> String {
    var lines = ["# SegKit training configuration (resolved: every setting, defaults included)"]
    var section = ""
    for setting in Self.table where setting.task == nil || setting.task == task {
      if setting.section != section {
        section = setting.section
        lines.append("")
        lines.append("# \(section)")
      }
      lines.append("\(setting.key): \(setting.read(self))")
    }
    return lines.joined(separator: "\n") + "\n"
  }

  /// A fingerprint of the resolved configuration (FNV-1a, 64 bits, hex): checkpoints
  /// record it so that resuming with other settings can be noticed. Not cryptographic.
  public var hash: String {
    var value: UInt64 = 0xCBF2_9CE4_8422_2325
    for byte in yaml().utf8 {
      value ^= UInt64(byte)
      value = value &* 0x0000_0100_0000_01B3
    }
    return String(format: "%016llx", value)
  }
}
