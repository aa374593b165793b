/// A problem loading or running a model: its files (run folder, manifest,
/// checkpoint, weights), settings or inputs. The message names the file or
/// setting and says what is wrong, to be shown as it is.
public struct InferenceError: Error, CustomStringConvertible, Equatable, Sendable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}
