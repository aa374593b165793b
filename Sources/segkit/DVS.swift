import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor
import SegKitTraining

/// `segkit dvs …`: video semantic segmentation with dynamic key frames (DVSNet).
struct DVSCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "dvs",
    abstract: "Video semantic segmentation with dynamic key frames (DVSNet): decision samples, decision training, evaluation.",
    discussion: """
      The pieces: a segmentation run (`segkit train`, any semantic model), a flow network \
      (a `task: flow` run of flownets_thin, or FlowNet2-S weights) and a decision network \
      trained here on samples from both. Each frame is split into regions (--regions, \
      --overlap); a region with a key frame runs the flow network from itself to its key, \
      and the decision network predicts from the flow network's features how many of the \
      region's pixels the warped key labels would get right (the confidence score, percent). \
      Below the target the region is segmented and becomes its own key; otherwise the key's \
      logits are warped by the flow.
      """,
    subcommands: [DVSFeatures.self, DVSTrainDecision.self, DVSEval.self, DVSVideo.self]
  )
}

/// The networks of the two paths and the regions.
struct DVSArguments: ParsableArguments {
  @OptionGroup var model: ModelArguments

  @Option(help: "The flow network: a `task: flow` run folder, or a weight file with --flow-model.")
  var flow: String

  @Option(help: "The flow network of a weight file: flownets_thin (DVSNet's) or flownet2s.")
  var flowModel = "flownets_thin"

  @Option(help: "Regions per frame, ROWSxCOLUMNS (DVSNet: 2x2; seed 004: 1x1).")
  var regions = "1x1"

  @Option(help: "Pixels by which each region reaches across its inner edges (DVSNet: 64).")
  var overlap = 0

  @Option(help: "Where key logits are warped: flow (at the flow's resolution, DVSNet) or output (the flow upsampled to the region); default: the flow run's warp_at, else flow.")
  var warpAt: String?

  @Option(help: "Factor regions are resized by for the flow network (DVSNet: 0.5); default: the flow run's flow_input_scale, else 1.")
  var flowScale: Double?

  @Option(help: "Arithmetic of the segmentation path: fp32 (exact, the default) or bf16.")
  var precision = "fp32"

  @Option(help: "Device: auto (the first CUDA device, else the CPU), cpu, cuda, cuda:N or mps.")
  var device = "auto"

  func grid() throws -> RegionGrid {
    let parts = regions.lowercased().split(separator: "x").map { Int($0) }
    guard parts.count == 2, let rows = parts[0], let columns = parts[1] else {
      throw ValidationError("--regions '\(regions)' is not ROWSxCOLUMNS (e.g. 2x2)")
    }
    do { return try RegionGrid(rows: rows, columns: columns, overlap: overlap) } catch let error as InferenceError {
      throw ValidationError("--regions/--overlap: \(error.message)")
    }
  }

  /// The segmenter of `policy` with the segmentation model on its device.
  func segmenter(policy: DynamicKeyFrameSegmenter.Policy, decision: DecisionNetwork?) throws -> DynamicKeyFrameSegmenter {
    try segmenterAndManifest(policy: policy, decision: decision).segmenter
  }

  func segmenterAndManifest(policy: DynamicKeyFrameSegmenter.Policy, decision: DecisionNetwork?) throws
    -> (segmenter: DynamicKeyFrameSegmenter, manifest: ModelManifest)
  {
    let chosen = try resolveDevice(device)
    let run = try model.run()
    let loaded = try model.load(run: run?.layout, fallbackClasses: nil, requireWeights: true)
    guard loaded.manifest.task == .semantic else {
      throw ValidationError("the segmentation path needs a semantic model; \(loaded.manifest.model) is a \(loaded.manifest.task.rawValue) model")
    }
    guard let chosenPrecision = InferencePrecision(rawValue: precision), chosenPrecision != .int8 else {
      throw ValidationError("--precision must be fp32 or bf16 for dvs (int8 would need a calibration set), got '\(precision)'")
    }
    let image = try ImageSegmenter(model: loaded.network, device: chosen, normalization: loaded.manifest.normalization,
                                   precision: chosenPrecision)
    let flowNetwork = try self.flowNetwork(device: chosen)
    try decision?.to(device: chosen)
    // A warp-path run says how its flow network was trained to be used.
    let flowRun = try? TrainingConfig.resolve(file: RunLayout(URL(fileURLWithPath: flow)).configURL)
    let warp = warpAt ?? (flowRun?.data.dataset == "cityscapes" ? flowRun?.flow.warpAt : nil) ?? "flow"
    guard let resolution = WarpPath.Resolution(rawValue: warp) else { throw ValidationError("--warp-at '\(warp)': expected flow or output") }
    let scale = flowScale ?? (flowRun?.data.dataset == "cityscapes" ? flowRun?.flow.inputScale : nil) ?? 1
    guard scale > 0, scale <= 16 else { throw ValidationError("--flow-scale must be more than 0 and at most 16, got \(scale)") }
    return (try DynamicKeyFrameSegmenter(segmenter: image, flowNetwork: flowNetwork, decision: decision, grid: try grid(), policy: policy,
                                         warpResolution: resolution, flowScale: scale),
            loaded.manifest)
  }

  func flowNetwork(device: Device) throws -> FlowNetS {
    let url = URL(fileURLWithPath: flow)
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
      throw ValidationError("--flow \(flow): no such file or folder")
    }
    if isDirectory.boolValue { return try NetworkFlow(run: try RunLayout.existing(url), device: device).network }
    guard let widths = ModelZoo.flowNetworkWidths(flowModel) else {
      throw ValidationError("--flow-model \(flowModel): expected \(ModelZoo.flowNetworkNames.joined(separator: " or "))")
    }
    return try NetworkFlow(widths: widths, weights: url, device: device).network
  }
}

/// Where the video snippets come from.
struct SnippetArguments: ParsableArguments {
  @Option(help: "Cityscapes root with leftImg8bit_sequence/ and gtFine/ (or `segkit data synth --kind street`'s folder).")
  var cityscapes: String?

  @Option(help: "CamVid at 30 fps: a root with <split>/<sequence>/ frames and <split>annot/<sequence>/ labels (seed 004's layout).")
  var camvid: String?

  @Option(help: "The split: train, val or test.")
  var split = "val"

  func validate() throws {
    guard (cityscapes == nil) != (camvid == nil) else { throw ValidationError("pass one of --cityscapes and --camvid") }
  }

  func dataset() throws -> VideoSnippets {
    if let camvid { return try VideoSnippets.camvid(root: URL(fileURLWithPath: camvid), split: split) }
    return try VideoSnippets.cityscapes(root: URL(fileURLWithPath: cityscapes ?? ""), split: split)
  }
}

/// How each region chooses its path.
struct PolicyArguments: ParsableArguments {
  @Option(help: "The decision network (OUT/decision.safetensors of `segkit dvs train-decision`); needed by target policies.")
  var decision: String?

  @Option(help: "fast, balanced or slow (targets 80, 90, 95), target:T, interval:K or every-frame.")
  var policy = "balanced"

  @Flag(help: "DVSNet's dynamic target: 1 lower after each segmentation step, 0.1 higher after each flow step.")
  var dynamic = false

  func decisionNetwork() throws -> DecisionNetwork? {
    try decision.map { try DecisionNetworkFile.read(URL(fileURLWithPath: $0)) }
  }

  /// --policy, checked against the decision network it needs.
  func chosen(decision network: DecisionNetwork?) throws -> DynamicKeyFrameSegmenter.Policy {
    let chosen = try Self.parse(policy, dynamic: dynamic)
    if case .target = chosen, network == nil {
      throw ValidationError("--policy \(policy) decides by the decision network: pass --decision FILE")
    }
    return chosen
  }

  static func parse(_ text: String, dynamic: Bool) throws -> DynamicKeyFrameSegmenter.Policy {
    if let preset = DynamicKeyFrameSegmenter.Policy.preset(text) {
      guard case .target(let t, _) = preset else { return preset }
      return .target(t, dynamic: dynamic)
    }
    if text == "every-frame" { return .everyFrame }
    if text.hasPrefix("target:"), let t = Double(text.dropFirst("target:".count)), (0...100).contains(t) {
      return .target(t, dynamic: dynamic)
    }
    if text.hasPrefix("interval:"), let k = Int(text.dropFirst("interval:".count)), k >= 1 { return .fixedInterval(k) }
    throw ValidationError("--policy '\(text)': expected fast, balanced, slow, target:T (0 to 100), interval:K (K ≥ 1) or every-frame")
  }
}

struct DVSFeatures: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "features",
    abstract: "Write decision samples: flow features and warp-path confidence scores of frame pairs (seed 004's X and Y).",
    discussion: """
      For every snippet, frames from the last back to --max-distance in steps of --stride \
      are current frames, each paired with the keys 0 … --max-distance frames before it. \
      Per pair and region: the flow network's conv6_1 features (current → key) and the \
      percentage of pixels where the warped key segmentation equals the segmentation of the \
      current frame (DVSNet's target; void ignored). Written as one safetensors file \
      (features, scores, distances) for `segkit dvs train-decision`.
      """)

  @OptionGroup var networks: DVSArguments
  @OptionGroup var snippets: SnippetArguments

  @Option(help: "The largest key-to-current distance in frames (DVSNet's lists: 9).")
  var maxDistance = 9

  @Option(help: "Frames between successive current frames of a snippet.")
  var stride = 5

  @Option(help: "The samples file to write (.safetensors).")
  var out: String

  func validate() throws {
    guard (0...100).contains(maxDistance) else { throw ValidationError("--max-distance must be 0 to 100") }
    guard stride >= 1 else { throw ValidationError("--stride must be at least 1") }
  }

  func run() throws {
    Torch.keepFreedMemory()
    let outURL = try writableFile(out, option: "--out")
    let segmenter = try networks.segmenter(policy: .everyFrame, decision: nil)
    let dataset = try snippets.dataset()
    let stop = Interrupt.install(message: "stopping after this snippet (Ctrl-C again quits at once)")
    var features: [Tensor] = [], scores: [Float] = [], distances: [Float] = []
    var byDistance = [(sum: Double, count: Int)](repeating: (0, 0), count: maxDistance + 1)
    let start = Date()
    for (index, snippet) in dataset.snippets.enumerated() {
      if stop.requested { throw ExitCode(130) }
      let frames = try snippet.frames.map { try ImageIO.read($0) }
      for current in Swift.stride(from: frames.count - 1, through: maxDistance, by: -stride) {
        let keys = (0...maxDistance).map { frames[current - $0] }
        for (distance, samplesOfKey) in try segmenter.decisionSamples(current: frames[current], keys: keys).enumerated() {
          for sample in samplesOfKey {
            guard let score = sample.score else { continue }
            features.append(sample.features)
            scores.append(Float(score))
            distances.append(Float(distance))
            byDistance[distance].sum += score
            byDistance[distance].count += 1
          }
        }
      }
      warn("\(index + 1)/\(dataset.snippets.count) snippets, \(scores.count) samples", prefix: "")
    }
    guard !scores.isEmpty else {
      throw CommandError("no samples: every snippet has fewer than --max-distance + 1 = \(maxDistance + 1) frames")
    }
    let samples = try DecisionSamples(
      features: try Tensor.cat(features, dim: 0), scores: try Tensor(scores, shape: [scores.count]),
      distances: try Tensor(distances, shape: [distances.count]))
    try samples.write(to: outURL)
    print("\(samples.count) samples from \(dataset.snippets.count) snippets of \(dataset.split) (\(String(format: "%.1f s", Date().timeIntervalSince(start)))): \(outURL.path)")
    print("mean confidence score by key distance: " + byDistance.enumerated().filter { $0.element.count > 0 }
      .map { String(format: "%d: %.1f", $0.offset, $0.element.sum / Double($0.element.count)) }.joined(separator: ", "))
  }
}

struct DVSEval: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "eval",
    abstract: "Score dynamic key frames on video snippets: mIoU on the annotated frames, frames per second, paths taken.",
    discussion: """
      Each snippet runs from its first frame (or --frames-before the annotated one) to its \
      annotated frame, as a new video. --policy: fast, balanced or slow (targets 80, 90, 95), \
      target:T, interval:K (a key every K frames, Deep Feature Flow's schedule) or \
      every-frame (the segmentation network alone). --sweep runs every-frame, intervals and a \
      range of targets and writes OUT/sweep.csv and OUT/sweep.png (mIoU against frames per \
      second). Frames per second count the networks' work, not decoding.
      """)

  @OptionGroup var networks: DVSArguments
  @OptionGroup var snippets: SnippetArguments
  @OptionGroup var policy: PolicyArguments

  @Flag(help: "Run every-frame, intervals 2, 3, 5, 10 and targets 50 … 98; write OUT/sweep.csv and OUT/sweep.png.")
  var sweep = false

  @Option(help: "Frames before the annotated one where each snippet starts (default: its first frame).")
  var framesBefore: Int?

  @Option(help: "Output folder for --sweep.")
  var out: String?

  func validate() throws {
    if sweep && out == nil { throw ValidationError("--sweep writes a table and a plot: pass --out DIR") }
    if let framesBefore, framesBefore < 0 { throw ValidationError("--frames-before must not be negative") }
  }

  func run() throws {
    Torch.keepFreedMemory()
    let decisionNetwork = try policy.decisionNetwork()
    let policies: [DynamicKeyFrameSegmenter.Policy] = sweep
      ? [.everyFrame] + [2, 3, 5, 10].map { .fixedInterval($0) }
        + (decisionNetwork == nil ? [] : [50.0, 60, 70, 80, 85, 90, 92, 94, 96, 98].map { .target($0, dynamic: policy.dynamic) })
      : [try policy.chosen(decision: decisionNetwork)]
    if sweep && decisionNetwork == nil { warn("no --decision: the sweep has no target policies") }
    let dataset = try snippets.dataset()
    let stop = Interrupt.install(message: "stopping after this snippet (Ctrl-C again quits at once)")
    print("\(dataset.snippets.count) snippets of \(dataset.split), regions \(networks.regions) (overlap \(networks.overlap) px)")
    print("policy                        mIoU    fps      seg steps  flow steps")
    var results: [DynamicKeyFrameEvaluation.Result] = []
    for policy in policies {
      let segmenter = try networks.segmenter(policy: policy, decision: decisionNetwork)
      let result: DynamicKeyFrameEvaluation.Result
      do {
        result = try DynamicKeyFrameEvaluation.run(segmenter, on: dataset, framesBefore: framesBefore, shouldStop: { stop.requested })
      } catch let error as InferenceError where error == .stopped {
        print("stopped during \(policy)")
        throw ExitCode(130)
      }
      results.append(result)
      print(Self.row(result))
      fflush(stdout)
    }
    guard sweep, let out else { return }
    let folder = URL(fileURLWithPath: out)
    try createFolder(folder)
    let csv = "policy,mIoU,fps,segmentation_steps,flow_steps,segmentation_share\n" + results.map {
      String(format: "%@,%.4f,%.3f,%d,%d,%.4f", $0.policy, $0.scores.meanIoU, $0.framesPerSecond, $0.counts.segmentationSteps,
             $0.counts.flowSteps, $0.segmentationShare)
    }.joined(separator: "\n") + "\n"
    let csvURL = folder.appendingPathComponent("sweep.csv")
    do { try AtomicFile.write(Data(csv.utf8), to: csvURL) } catch {
      throw CommandError("\(csvURL.path): cannot be written (\(error.localizedDescription))")
    }
    print("table: \(csvURL.path)")
    let plotURL = folder.appendingPathComponent("sweep.png")
    try ImageIO.writePNG(Self.plot(results, policies: policies).render(), to: plotURL)
    print("plot: \(plotURL.path)")
  }

  /// mIoU (percent) against frames per second: per-frame segmentation as one point, the
  /// fixed intervals and the targets as curves.
  static func plot(_ results: [DynamicKeyFrameEvaluation.Result], policies: [DynamicKeyFrameSegmenter.Policy]) -> Plot {
    var plot = Plot(title: "mIoU against speed", xLabel: "frames per second", yLabel: "mIoU (%)")
    func points(_ keep: (DynamicKeyFrameSegmenter.Policy) -> Bool) -> [(x: Double, y: Double)] {
      zip(policies, results).filter { keep($0.0) }.map { (x: $0.1.framesPerSecond, y: 100 * $0.1.scores.meanIoU) }
    }
    plot.series = [
      Plot.Series(name: "every frame", color: [40, 40, 40], points: points { $0 == .everyFrame }, joined: false),
      Plot.Series(name: "fixed interval", color: [230, 120, 20], points: points { if case .fixedInterval = $0 { return true } else { return false } }),
      Plot.Series(name: "DVS targets", color: [30, 100, 220], points: points { if case .target = $0 { return true } else { return false } }),
    ].filter { !$0.points.isEmpty }
    return plot
  }

  static func row(_ result: DynamicKeyFrameEvaluation.Result) -> String {
    result.policy.padding(toLength: 28, withPad: " ", startingAt: 0)
      + String(format: "  %.4f  %7.2f  %9d  %10d", result.scores.meanIoU, result.framesPerSecond, result.counts.segmentationSteps, result.counts.flowSteps)
  }
}

struct DVSVideo: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "video",
    abstract: "Segment a video with dynamic key frames into an annotated video: overlays or colour masks, boxes and distances.",
    discussion: """
      Writes OUT/<stem>_overlay.mp4 with as many frames as the input: the labels' colours \
      blended over each frame (--alpha; 1 gives the colour masks alone), and with --boxes a \
      box around each connected region of the named classes, captioned with its class and \
      the ground distance a pinhole camera gives: Z = focal length × camera height / (rows \
      between the box's lowest row and the horizon). That assumes flat ground, a level camera \
      at --camera-height metres, the horizon at --horizon (row) and the object standing on \
      its lowest pixel; it is a geometric estimate, not a measured range, and boxes that do \
      not reach below the horizon get none. Ends with frames per second and the paths taken. \
      Ctrl-C stops after the current frame and leaves a playable video of the frames done.
      """)

  @Argument(help: "The video (mp4, avi, mov, mkv, webm, …).")
  var input: String

  @OptionGroup var networks: DVSArguments
  @OptionGroup var policy: PolicyArguments

  @Option(help: "Output folder.")
  var out: String

  @Option(help: "Opacity of the colours over the frames, 0 to 1 (1: colour masks).")
  var alpha = 0.5

  @Option(help: "Comma-separated class names to box (e.g. car,person); none by default.")
  var boxes: String?

  @Option(help: "The smallest region boxed, in pixels.")
  var minimumBoxArea = 40

  @Option(help: "Camera height above the ground, metres.")
  var cameraHeight = 1.5

  @Option(help: "Focal length in pixels (default: the frame width, a 53° horizontal field of view).")
  var focalLength: Double?

  @Option(help: "Image row of the horizon (default: the middle row).")
  var horizon: Double?

  @Flag(help: "Replace an existing output video.")
  var overwrite = false

  func run() throws {
    Torch.keepFreedMemory()
    let inputURL = URL(fileURLWithPath: input)
    guard FileManager.default.fileExists(atPath: inputURL.path) else { throw ValidationError("\(input): no such file") }
    guard (0...1).contains(alpha) else { throw ValidationError("--alpha must be in [0, 1], got \(alpha)") }
    let folder = URL(fileURLWithPath: out)
    let videoURL = PredictionWriter.videoURL(for: inputURL, in: folder)
    if FileManager.default.fileExists(atPath: videoURL.path) && !overwrite {
      throw ValidationError("\(videoURL.path) exists: --overwrite replaces it")
    }
    let decisionNetwork = try policy.decisionNetwork()
    let chosen = try policy.chosen(decision: decisionNetwork)
    let (segmenter, manifest) = try networks.segmenterAndManifest(policy: chosen, decision: decisionNetwork)
    let colormap = try manifest.colormap()
    var boxed: [UInt8: String] = [:]
    for name in boxes?.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) ?? [] {
      guard let index = manifest.classNames.firstIndex(of: name) else {
        throw ValidationError("--boxes: the model has no class '\(name)' (its classes: \(manifest.classNames.joined(separator: ", ")))")
      }
      boxed[UInt8(index)] = name
    }
    try createFolder(folder)
    let writer = try PredictionWriter(palette: colormap, alpha: alpha)
    var camera: GroundPlaneCamera?
    let cameraHeight = self.cameraHeight, focalLength = self.focalLength, horizon = self.horizon, minimumBoxArea = self.minimumBoxArea
    let annotate: ((inout Image, Image) throws -> Void)? = boxed.isEmpty ? nil : { frame, labels in
      if camera == nil {
        camera = try GroundPlaneCamera(height: cameraHeight, focalLength: focalLength ?? Double(labels.width),
                                       horizon: horizon ?? Double(labels.height) / 2)
      }
      for box in ObjectBoxes.find(in: labels, classes: Set(boxed.keys), minimumArea: minimumBoxArea) {
        let color = colormap.colors.indices.contains(Int(box.label)) ? colormap.colors[Int(box.label)] : (255, 255, 255)
        frame.strokeRectangle(x: box.left, y: box.top, width: box.right - box.left + 1, height: box.bottom - box.top + 1,
                              color: [color.0, color.1, color.2], thickness: 2)
        let caption = (boxed[box.label] ?? "") + (camera!.distance(toGroundRow: box.bottom).map { String(format: " %.1fM", $0) } ?? "")
        let size = BitmapFont.size(of: caption)
        let y = max(0, box.top - size.height - 3)
        frame.fill(x: box.left, y: y, width: size.width + 4, height: size.height + 3, color: [20, 20, 20])
        BitmapFont.draw(caption, into: &frame, x: box.left + 2, y: y + 2, color: [255, 255, 255])
      }
    }
    let stop = Interrupt.install(message: "stopping after this frame; the video keeps the frames done (Ctrl-C again quits at once)")
    let start = Date()
    let result = try writer.segmentVideo(inputURL, with: segmenter, into: folder, frames: false, replacing: overwrite,
                                         annotate: annotate, shouldStop: { stop.requested })
    let seconds = Date().timeIntervalSince(start)
    let counts = segmenter.counts
    print("video: \(result.video.path) (\(result.frames) frames\(result.stopped ? ", stopped early; it plays" : ""))")
    print(String(format: "%.2f frames/s (decoding and encoding included); %d segmentation steps, %d flow steps in %@ regions (%@)",
                 Double(result.frames) / max(seconds, 1e-9), counts.segmentationSteps, counts.flowSteps, networks.regions,
                 chosen.description))
    if result.stopped { throw ExitCode(130) }
  }
}
