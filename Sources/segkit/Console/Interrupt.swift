import Dispatch
import Foundation
import SegKitTensor

/// Ctrl-C (SIGINT) and SIGTERM: the first asks the trainer to checkpoint and stop between
/// steps; a second exits at once.
final class Interrupt: @unchecked Sendable {
  private let lock = NSLock()
  private var count = 0
  private var sources: [DispatchSourceSignal] = []

  var requested: Bool {
    lock.lock()
    defer { lock.unlock() }
    return count > 0
  }

  static func install(
    message: String = "stopping after this step (checkpoint); press Ctrl-C again to quit at once",
    signals: [Int32] = [SIGINT, SIGTERM]
  ) -> Interrupt {
    let interrupt = Interrupt()
    if !signals.contains(SIGINT) { signal(SIGINT, SIG_IGN) }
    for number in signals {
      signal(number, SIG_IGN)  // delivered to the dispatch source instead
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler { interrupt.signalled(message) }
      source.resume()
      interrupt.sources.append(source)
    }
    return interrupt
  }

  private func signalled(_ message: String) {
    lock.lock()
    count += 1
    let first = count == 1
    lock.unlock()
    if first {
      FileHandle.standardError.write(Data("\n\(message)\n".utf8))
    } else {
      PartialFiles.removeAll()
      exit(130)
    }
  }
}
