import Foundation

/// Something the training loop reports.
public enum TrainingEvent {
  /// A log line.
  case message(String)
  /// Transient progress text (redrawn in place on a terminal).
  case progress(String)
  case scalars([(tag: String, value: Double)], step: Int)
  case images([(tag: String, image: Image)], step: Int)
}

/// Where the loop's reports go: the console, train.log, TensorBoard. A loop with
/// no sinks writes nothing (per-sequence fine-tuning; ranks other than 0).
public protocol TrainingSink: AnyObject {
  func record(_ event: TrainingEvent) throws
  /// The loop is done (finished, interrupted or failed).
  func close() throws
}

/// How training reports on standard output.
public enum TrainerConsole: Sendable {
  case quiet
  /// Log lines only (for pipes and files).
  case lines
  /// Log lines and a progress line redrawn in place (for terminals).
  case progressBar

  /// A progress bar when standard output is a terminal, plain lines otherwise.
  public static var automatic: TrainerConsole { isatty(STDOUT_FILENO) == 1 ? .progressBar : .lines }
}

/// Log lines and, on a terminal, a progress line on standard output.
public final class ConsoleSink: TrainingSink {
  public let mode: TrainerConsole
  private var barShown = false

  public init(_ mode: TrainerConsole) { self.mode = mode }

  public func record(_ event: TrainingEvent) {
    switch event {
    case .message(let text) where mode != .quiet:
      write((barShown ? "\r\u{1B}[K" : "") + text + "\n")
      barShown = false
    case .progress(let text) where mode == .progressBar:
      write("\r\u{1B}[K" + text)
      barShown = true
    default: break
    }
  }

  public func close() {
    if barShown { write("\n") }
    barShown = false
  }

  /// Through `print`, so that these lines and the command's own stay in order.
  private func write(_ text: String) {
    print(text, terminator: "")
    fflush(stdout)
  }
}

/// Appends time-stamped log lines to a file (train.log), each written through at once.
public final class LogFileSink: TrainingSink {
  public let url: URL
  private let file: FileHandle
  private let timestamp: DateFormatter = {
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
    return formatter
  }()

  /// Opens `url` for appending, creating it when missing.
  public init(_ url: URL) throws {
    if !FileManager.default.fileExists(atPath: url.path) && !FileManager.default.createFile(atPath: url.path, contents: nil) {
      throw TrainingError("cannot create the log file \(url.path)")
    }
    guard let handle = FileHandle(forUpdatingAtPath: url.path) else {
      throw TrainingError("cannot open the log file \(url.path) for writing")
    }
    self.url = url
    file = handle
  }

  deinit { try? file.close() }

  public func record(_ event: TrainingEvent) throws {
    guard case .message(let message) = event else { return }
    let line = "\(timestamp.string(from: Date())) \(message)\n"
    do {
      try file.seekToEnd()
      try file.write(contentsOf: Data(line.utf8))
    } catch {
      throw TrainingError("cannot write to the log file \(url.path): \(RunLayout.reason(error))")
    }
  }

  public func close() {}
}

/// Scalars and images to a TensorBoard event file.
public final class TensorBoardSink: TrainingSink {
  public let writer: TensorBoardWriter

  public init(_ writer: TensorBoardWriter) { self.writer = writer }

  public func record(_ event: TrainingEvent) throws {
    switch event {
    case .scalars(let values, let step): try writer.addScalars(values, step: step)
    case .images(let images, let step): for (tag, image) in images { try writer.addImage(tag, image, step: step) }
    case .message, .progress: break
    }
  }

  public func close() throws { try writer.close() }
}
