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
      /v1/sessions/ID/propagate (XMem, streamed as JSON lines), GET /v1/sessions/ID/result?format=davis|video. DVSNet: \
      POST /v1/videos/semantic?policy=P&boxes=car,person (a job: GET /v1/jobs/ID, /v1/jobs/ID/result). Also \
      GET /v1/models, /healthz, /readyz, /metrics, and the page at /. Each limit is a flag; a request past one gets \
      413 or 422 naming it. Stop with Ctrl-C.
      """
  )

  @Option(name: .customLong("run"), help: "A semantic or foreground run folder to serve (repeat for several; requests choose by folder name).")
  var runs: [String] = []

  @Option(help: "XMem for video sessions: its weights (XMem.pth, or a memory run's model.safetensors) or a memory run folder.")
  var vos: String?

  @Option(help: "DVSNet for annotated videos (POST /v1/videos/semantic): the segmentation run.")
  var dvsRun: String?

  @Option(help: "DVSNet's flow network: a flow run folder, or thin FlowNetS weights.")
  var dvsFlow: String?

  @Option(help: "DVSNet's decision network (needed by target policies such as balanced).")
  var dvsDecision: String?

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

  @Option(help: "Arithmetic of the image models: fp32, bf16 or int8 (int8 calibrates on --calibration).")
  var precision = "fp32"

  @Option(help: "Images int8 calibrates on: an image, a folder of images (name order) or a video.")
  var calibration: String?

  @Option(help: "How many of --calibration's images (or frames) int8 calibrates on.")
  var calibrationImages = 8

  @OptionGroup var device: DeviceArgument

  func run() throws {
    // The service rewrites its own session files; tracking every file read would also grow without end.
    CommandInputs.track(false)
    guard let precision = InferencePrecision(rawValue: precision) else {
      throw ValidationError("--precision must be fp32, bf16 or int8, got '\(self.precision)'")
    }
    guard (precision == .int8) == (calibration != nil) else {
      throw ValidationError(precision == .int8 ? "--precision int8 needs --calibration (images to calibrate on)"
                                               : "--calibration goes with --precision int8")
    }
    guard (1...256).contains(calibrationImages) else {
      throw ValidationError("--calibration-images must be 1 to 256, got \(calibrationImages)")
    }
    var settings = ServiceSettings(folder: URL(fileURLWithPath: folder ?? NSTemporaryDirectory()).appendingPathComponent(
      folder == nil ? "segkit-serve-\(ProcessInfo.processInfo.processIdentifier)" : ""))
    (settings.host, settings.port, settings.token) = (host, port, token)
    (settings.maxBatch, settings.maxDelayMs, settings.maxBodyBytes, settings.maxImagePixels) = (maxBatch, maxDelayMs, maxBodyBytes, maxImagePixels)
    (settings.maxFrames, settings.maxSessionBytes, settings.maxSessions, settings.maxJobs) = (maxFrames, maxSessionBytes, maxSessions, maxJobs)
    (settings.maxQueue, settings.requestTimeout, settings.sessionIdle) = (maxQueue, requestTimeout, sessionIdle)
    do { settings = try settings.validated() } catch { throw ValidationError("\(error)") }
    let device = try self.device.resolved()
    let calibrationImages: [Image] = try calibration.map { path -> [Image] in
      do { return try PredictionInput(URL(fileURLWithPath: path)).calibrationImages(self.calibrationImages, single: nil, admit: { _ in }) } catch {
        throw ValidationError("--calibration \(path): \(error)")
      }
    } ?? []
    let models = try runs.map { run -> ServedModel in
      do {
        return try ServedModel(run: URL(fileURLWithPath: run), device: device, precision: precision, calibration: calibrationImages)
      } catch {
        throw ValidationError("--run \(run): \(error)")
      }
    }
    let xmem = try vos.map { path in
      do { return try XMemSegmenters(serving: URL(fileURLWithPath: path), device: device) } catch { throw ValidationError("--vos \(path): \(error)") }
    }
    guard (dvsRun == nil) == (dvsFlow == nil), dvsDecision == nil || dvsRun != nil else {
      throw ValidationError("--dvs-run and --dvs-flow go together (--dvs-decision with them)")
    }
    let dvs = try dvsRun.map { run in
      do {
        return try SemanticVideoModel(run: URL(fileURLWithPath: run), flow: URL(fileURLWithPath: dvsFlow!),
                                      decision: dvsDecision.map { URL(fileURLWithPath: $0) }, device: device)
      } catch { throw ValidationError("--dvs-run/--dvs-flow/--dvs-decision: \(error)") }
    }
    let service: SegmentationService
    do { service = try SegmentationService(settings: settings, models: models, xmem: xmem, semanticVideo: dvs) } catch {
      throw ValidationError("\(error)")
    }
    let done = DispatchSemaphore(value: 0)
    nonisolated(unsafe) var failure: Error?
    let host = self.host
    Task {
      do {
        try await service.run { port in
          let served = models.map(\.name) + (xmem == nil ? [] : ["XMem"]) + (dvs == nil ? [] : ["DVSNet"])
          print("serving \(served.joined(separator: ", ")) on http://\(host):\(port)/")
          fflush(stdout)
        }
      } catch { failure = error }
      done.signal()
    }
    done.wait()
    try? FileManager.default.removeItem(at: settings.folder.appendingPathComponent("sessions"))
    if let failure { throw CommandError("the service stopped: \(failure)") }
  }
}
