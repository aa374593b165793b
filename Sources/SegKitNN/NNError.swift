/// An error SegKitNN raises itself (invalid settings, shapes a layer checks);
/// errors libtorch raises stay `TorchError`.
public struct NNError: Error, CustomStringConvertible, Equatable, Sendable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}
