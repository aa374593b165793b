/// Work ended early because the caller asked it to stop (Ctrl-C): the one signal every
/// loop throws (training, fine-tuning, DAVIS sequences, key-frame evaluation), so a
/// caller catches one type whichever library the loop lives in.
public struct StoppedOnRequest: Error, Equatable, Sendable, CustomStringConvertible {
  public init() {}
  public var description: String { "stopped on request" }
}
