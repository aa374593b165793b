/// A problem with a run: its folder, configuration, checkpoints or logs. The
/// message names the file or key and says what is wrong, to be shown as it is.
public struct TrainingError: Error, CustomStringConvertible, Equatable, Sendable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}
