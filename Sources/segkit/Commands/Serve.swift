import ArgumentParser
import Foundation
import SegKitInference
import SegKitService

struct Serve: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Serve models over HTTP, with a web page for images and interactive video segmentation.",
    discussion: """
      Images: POST /v1/segment (the image as the body or the form's 'image' part; model, format=png|color|overlay|json, \
      scales, flip). Video: POST /v1/sessions (a video or a zip of frames), PUT /v1/sessions/ID/masks/T, POST \
      /v1/sessions/ID/propagate (XMem, streamed as JSON lines), GET /v1/sessions/ID/result?format=davis|video. Also \
      GET /v1/models, /healthz, /readyz, /metrics, and the page at /. Each limit is a flag; a request past one gets \
      413 or 422 naming it. Stop with Ctrl-C.
      """
  )

  @Option(name: .customLong("run"), help: "A semantic or foreground run folder to serve (repeat for several; requests choose by folder name).")
  var runs: [String] = []

  @Option(help: "XMem for video sessions: its weights (XMem.pth, or a memory run's model.safetensors) or a memory run folder.")
  var vos: String?

  @Option(help: "Address to listen on (loopback by default: say 0.0.0.0 to be reachable from other machines).")
  var host = "127.0.0.1"

  @Option(help: "Port (0: any free one).")
  var port = 8080

  @Option(help: "Every API request (all but /healthz and the page's own files) needs 'Authorization: Bearer TOKEN' (or ?token=TOKEN).")
  var token: String?

  @Option(help: "The service's folder for session files (default: a new folder in the system's temporary folder).")
  var folder: String?

  @Option(help: "Images of one model and size gathered into one batch, at most.")
  var maxBatch = 1

  @Option(help: "Milliseconds a batch waits for more images after its first.")
  var maxDelayMs = 5.0

  @Option(help: "Largest request body in bytes.") var maxBodyBytes = 256 << 20
  @Option(help: "Largest image or frame in pixels (read from its header before decoding).") var maxImagePixels = 4096 * 4096
  @Option(help: "Most frames in a session.") var maxFrames = 2000
  @Option(help: "Most bytes a session's frames may take once unpacked.") var maxSessionBytes = 2 << 30
  @Option(help: "Most sessions open at once.") var maxSessions = 16
  @Option(help: "Most propagations running at once.") var maxJobs = 2
  @Option(help: "Most image requests waiting for a model.") var maxQueue = 256
  @Option(help: "Seconds an image request may wait and run.") var requestTimeout = 60.0
  @Option(help: "Seconds an unused session lives.") var sessionIdle = 900.0

  @Option(help: "Arithmetic of the image models: fp32 or bf16 (int8 needs calibration images: use `segkit predict`).")
  var precision = "fp32"

  @OptionGroup var device: DeviceArgument

  func run() throws {
    // The service rewrites its own session files; tracking every file read would also grow without end.
    CommandInputs.track(false)
    guard let precision = InferencePrecision(rawValue: precision), precision != .int8 else {
      throw ValidationError("--precision must be fp32 or bf16, got '\(self.precision)'")
    }
    var settings = ServiceSettings(folder: URL(fileURLWithPath: folder ?? NSTemporaryDirectory()).appendingPathComponent(
      folder == nil ? "segkit-serve-\(ProcessInfo.processInfo.processIdentifier)" : ""))
    (settings.host, settings.port, settings.token) = (host, port, token)
    (settings.maxBatch, settings.maxDelayMs, settings.maxBodyBytes, settings.maxImagePixels) = (maxBatch, maxDelayMs, maxBodyBytes, maxImagePixels)
    (settings.maxFrames, settings.maxSessionBytes, settings.maxSessions, settings.maxJobs) = (maxFrames, maxSessionBytes, maxSessions, maxJobs)
    (settings.maxQueue, settings.requestTimeout, settings.sessionIdle) = (maxQueue, requestTimeout, sessionIdle)
    do { settings = try settings.validated() } catch { throw ValidationError("\(error)") }
    let device = try self.device.resolved()
    let models = try runs.map { run -> ServedModel in
      do { return try ServedModel(run: URL(fileURLWithPath: run), device: device, precision: precision) } catch {
        throw ValidationError("--run \(run): \(error)")
      }
    }
    let xmem = try vos.map { try Self.xmem($0, device: device) }
    let service: SegmentationService
    do { service = try SegmentationService(settings: settings, models: models, xmem: xmem) } catch { throw ValidationError("\(error)") }
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var failure: Error?
    let host = self.host
    Task {
      do {
        try await service.run { port in
          print("serving \(models.map(\.name).joined(separator: ", "))\(xmem == nil ? "" : (models.isEmpty ? "" : " and ") + "XMem") on http://\(host):\(port)/")
          fflush(stdout)
        }
      } catch { failure = error }
      done.signal()
    }
    done.wait()
    try? FileManager.default.removeItem(at: settings.folder.appendingPathComponent("sessions"))
    if let failure { throw CommandError("the service stopped: \(failure)") }
  }

  /// XMem from weights, or from a memory run folder (its model.safetensors), with the run's settings.
  static func xmem(_ path: String, device: Device) throws -> XMemSegmenters {
    var weights = URL(fileURLWithPath: path)
    var isFolder: ObjCBool = false
    if FileManager.default.fileExists(atPath: path, isDirectory: &isFolder), isFolder.boolValue {
      weights = weights.appendingPathComponent("model.safetensors")
    }
    do {
      let settings = try XMemSettings.ofRun(besideWeights: weights) ?? XMemSettings()
      return try XMemSegmenters(weights: weights, settings: settings, device: device)
    } catch { throw ValidationError("--vos \(path): \(error)") }
  }
}
