import Foundation
import Hummingbird
import SegKitData
import SegKitInference

/// DVSNet for `POST /v1/videos/semantic`: the segmentation run, the flow network (a flow
/// run's folder, whose settings say where to warp and at what scale, or thin FlowNetS
/// weights) and, for target policies, the decision network. Loaded once; each job gets
/// its own `DynamicKeyFrameSegmenter` (its keys and counts) over these networks.
public final class SemanticVideoModel: @unchecked Sendable {
  let image: ImageSegmenter
  let manifest: ModelManifest
  let flow: FlowNetS
  let decision: DecisionNetwork?
  let featureLayer: FlowNetS.FeatureLayer?
  let warp: WarpPath.Resolution
  let flowScale: Double
  /// Jobs run one at a time: they share these networks.
  let lock = NSLock()

  public init(run: URL, flow: URL, decision: URL?, device: Device = .cpu) throws {
    let loaded = try ModelLoader.load(run: try RunLayout.existing(run))
    guard loaded.manifest.task == .semantic else {
      throw InferenceError("\(run.path): a \(loaded.manifest.task.rawValue) run; DVSNet's segmentation path is a semantic run")
    }
    image = try ImageSegmenter(model: loaded.network, device: device, normalization: loaded.manifest.normalization)
    manifest = loaded.manifest
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: flow.path, isDirectory: &isFolder) else { throw InferenceError("\(flow.path): no such file or folder") }
    var defaults: ModelManifest.InferenceDefaults?
    if isFolder.boolValue {
      let flowRun = try RunLayout.existing(flow)
      self.flow = try NetworkFlow(run: flowRun, device: device).network
      defaults = try flowRun.manifest().inference
    } else {
      self.flow = try NetworkFlow(widths: .thin, weights: flow, device: device).network
    }
    if let decision {
      let (network, info) = try DecisionNetworkFile.readWithInfo(decision)
      try network.to(device: device)
      (self.decision, featureLayer) = (network, info.featureLayer)
    } else {
      (self.decision, featureLayer) = (nil, nil)
    }
    warp = defaults?.warpAt.flatMap(WarpPath.Resolution.init(rawValue:)) ?? .output
    flowScale = defaults?.flowInputScale ?? 1
    _ = try segmenter(policy: .fixedInterval(5))  // the networks fit together, said now
  }

  /// A fresh segmenter of `policy`, whole frames as one region (DVSNet's code).
  func segmenter(policy: DynamicKeyFrameSegmenter.Policy) throws -> DynamicKeyFrameSegmenter {
    try DynamicKeyFrameSegmenter(segmenter: image, flowNetwork: flow, decision: decision, grid: try RegionGrid(rows: 1, columns: 1, overlapShare: 0.0625),
                                 policy: policy, warpResolution: warp, flowScale: flowScale, featureLayer: featureLayer)
  }
}

/// One annotated video being made: its input and result in the job's folder, its progress.
final class SemanticVideoJob: @unchecked Sendable {
  enum State: String, Encodable { case running, done, cancelled, failed }

  struct Status: Encodable {
    let id: String
    let state: State
    let frames: Int
    let total: Int
    let policy: String
    let segmentationSteps: Int
    let flowSteps: Int
    let error: String?
  }

  let id: String
  let folder: URL
  let total: Int
  let policy: String
  private let lock = NSLock()
  private var state = State.running
  private var frames = 0
  private var counts = DynamicKeyFrameSegmenter.Counts()
  private var failure: String?
  private var stop = false

  init(id: String, folder: URL, total: Int, policy: String) {
    (self.id, self.folder, self.total, self.policy) = (id, folder, total, policy)
  }

  var input: URL { folder.appendingPathComponent("input.mp4") }
  var result: URL { PredictionWriter.videoURL(for: input, in: folder.appendingPathComponent("out")) }
  var status: Status {
    lock.withLock {
      Status(id: id, state: state, frames: frames, total: total, policy: policy, segmentationSteps: counts.segmentationSteps,
             flowSteps: counts.flowSteps, error: failure)
    }
  }
  var isRunning: Bool { lock.withLock { state == .running } }
  var cancelled: Bool { lock.withLock { stop } }
  func cancel() { lock.withLock { stop = true } }
  func progressed(_ counts: DynamicKeyFrameSegmenter.Counts) { lock.withLock { (frames, self.counts) = (counts.frames, counts) } }
  func finish(_ state: State, error: String? = nil) { lock.withLock { (self.state, failure) = (state, error) } }
}

/// The segmenter of a job, reporting each frame's counts as it goes.
private final class ReportingSegmenter: SequenceSegmenter {
  let inner: DynamicKeyFrameSegmenter
  let job: SemanticVideoJob
  init(_ inner: DynamicKeyFrameSegmenter, job: SemanticVideoJob) { (self.inner, self.job) = (inner, job) }
  func start(firstFrame: Image, mask: Image?) throws -> Image { try report(inner.start(firstFrame: firstFrame, mask: mask)) }
  func next(_ frame: Image) throws -> Image { try report(inner.next(frame)) }
  private func report(_ labels: Image) -> Image {
    job.progressed(inner.counts)
    return labels
  }
}

/// `POST /v1/videos/semantic` and `/v1/jobs/{id}`: a video annotated by DVSNet as a job.
extension SegmentationService {
  func addSemanticVideoRoutes(to router: Router<BasicRequestContext>) {
    router.post("/v1/videos/semantic") { request, _ -> Response in
      guard let model = self.semanticVideo else {
        throw ServiceError.unprocessable("no DVSNet is loaded: start the service with --dvs-run RUN --dvs-flow FLOW")
      }
      let query = request.uri.queryParameters
      let policyText = query.get("policy") ?? "balanced"
      let policy: DynamicKeyFrameSegmenter.Policy
      do { policy = try DynamicKeyFrameSegmenter.Policy.parse(policyText, dynamic: query.get("dynamic") == "true") } catch {
        throw ServiceError.badRequest("\(error)")
      }
      if case .target = policy, model.decision == nil {
        throw ServiceError.unprocessable("policy \(policyText) decides by the decision network, which this service was started without (--dvs-decision FILE)")
      }
      let alpha = try query.get("alpha").map { text -> Double in
        guard let value = Double(text), (0...1).contains(value) else { throw ServiceError.badRequest("alpha must be in [0, 1], got '\(text.prefix(40))'") }
        return value
      } ?? 0.5
      let colormap = try model.manifest.colormap()
      let names = query.get("boxes")?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? []
      let annotator: BoxAnnotator
      do { annotator = try BoxAnnotator(names: names, classNames: model.manifest.classNames, colormap: colormap) } catch {
        throw ServiceError.badRequest("boxes: \(error)")
      }
      let body = try await self.body(of: request)
      let job = try await Self.blocking { try self.jobs.create(body, policy: policy.description, settings: self.settings) }
      let writer = try PredictionWriter(palette: colormap, alpha: alpha)
      let thread = Thread {
        var boxes = annotator
        do {
          let segmenter = try model.lock.withLock { try model.segmenter(policy: policy) }
          let result = try model.lock.withLock {
            try Torch.withInferenceMode {
              try writer.segmentVideo(job.input, with: ReportingSegmenter(segmenter, job: job), into: job.folder.appendingPathComponent("out"),
                                      frames: false, replacing: true, annotate: names.isEmpty ? nil : { try boxes.annotate(&$0, labels: $1) },
                                      shouldStop: { job.cancelled })
            }
          }
          job.finish(result.stopped ? .cancelled : .done)
        } catch {
          job.finish(.failed, error: "\(error)")
        }
        self.jobs.ended(job)
      }
      thread.stackSize = 16 << 20
      thread.start()
      return try Self.json(job.status, status: .accepted)
    }
    router.get("/v1/jobs/:id") { _, context -> Response in try Self.json(self.jobs.job(context.parameters.require("id")).status) }
    router.get("/v1/jobs/:id/result") { _, context -> Response in
      let job = try self.jobs.job(context.parameters.require("id"))
      let status = job.status
      guard status.state == .done || status.state == .cancelled else {
        throw ServiceError(.conflict, "job \(job.id) is \(status.state.rawValue)\(status.error.map { ": \($0)" } ?? ""); its video is ready when it is done")
      }
      let data = try Data(contentsOf: job.result)
      return Response(status: .ok, headers: [.contentType: "video/mp4", .contentDisposition: "attachment; filename=\"annotated.mp4\""],
                      body: .init(byteBuffer: ByteBuffer(data: data)))
    }
    router.delete("/v1/jobs/:id") { _, context -> Response in
      try self.jobs.delete(context.parameters.require("id"))
      return Response(status: .noContent)
    }
  }
}

/// The semantic video jobs: bounded by --max-jobs running at once and --max-sessions kept.
final class JobStore: @unchecked Sendable {
  private let lock = NSLock()
  private var jobs: [String: SemanticVideoJob] = [:]
  private var running = 0
  private let root: URL

  init(folder: URL) throws {
    root = folder.appendingPathComponent("jobs")
    try? FileManager.default.removeItem(at: root)
    try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
  }

  func create(_ body: Data, policy: String, settings: ServiceSettings) throws -> SemanticVideoJob {
    try lock.withLock {
      guard running < settings.maxJobs else {
        throw ServiceError.unprocessable("\(settings.maxJobs) jobs are running (--max-jobs); try again when one ends", cap: "max-jobs")
      }
      guard jobs.count < settings.maxSessions else {
        throw ServiceError.unprocessable("\(jobs.count) jobs are kept (--max-sessions); delete one with DELETE /v1/jobs/ID", cap: "max-sessions")
      }
      running += 1
    }
    let id = SessionStore.newID()
    let folder = root.appendingPathComponent(id)
    do {
      try FileManager.default.createDirectory(at: folder.appendingPathComponent("out"), withIntermediateDirectories: true)
      let input = folder.appendingPathComponent("input.mp4")
      try body.write(to: input)
      let reader = try SessionUpload.openVideo(input, settings: settings, notAVideo: "the body is not a video ffmpeg can read")
      defer { reader.close() }
      let job = SemanticVideoJob(id: id, folder: folder, total: reader.frameCount, policy: policy)
      lock.withLock { jobs[id] = job }
      return job
    } catch {
      lock.withLock { running -= 1 }
      try? FileManager.default.removeItem(at: folder)
      throw error
    }
  }

  func ended(_ job: SemanticVideoJob) {
    lock.withLock { running -= 1 }
    try? FileManager.default.removeItem(at: job.input)
  }

  func job(_ id: String) throws -> SemanticVideoJob {
    try lock.withLock {
      guard SessionStore.isID(id), let job = jobs[id] else { throw ServiceError.notFound("no job \(id.prefix(64).debugDescription)") }
      return job
    }
  }

  /// Cancels `id` and removes it with its files (a running job's thread finishes its frame first).
  func delete(_ id: String) throws {
    let job = try lock.withLock { () -> SemanticVideoJob in
      guard SessionStore.isID(id), let job = jobs.removeValue(forKey: id) else { throw ServiceError.notFound("no job \(id.prefix(64).debugDescription)") }
      return job
    }
    job.cancel()
    // The thread may still be writing: its folder goes once it has stopped.
    DispatchQueue.global().async {
      while job.isRunning { Thread.sleep(forTimeInterval: 0.05) }
      try? FileManager.default.removeItem(at: job.folder)
    }
  }
}
