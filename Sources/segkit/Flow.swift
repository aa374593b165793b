import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitModels

/// `segkit flow …`: dense optical flow between two frames, its `.flo` files, pictures and warps.
struct FlowCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "flow",
    abstract: "Optical flow: compute it between two frames, render it, warp a mask or image with it.",
    discussion: """
      The flow F from A to B says where A's content went: A(x) ≈ B(x + F(x)), in pixels, \\
      F[..., 0] horizontal (rightwards), F[..., 1] vertical (downwards), as OpenCV and \\
      Middlebury have it. Files are Middlebury .flo.
      """,
    subcommands: [FlowCompute.self, FlowShow.self, FlowWarpCommand.self, FlowCacheCommand.self],
    defaultSubcommand: FlowCompute.self
  )
}

struct FlowCompute: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "compute", abstract: "Write the flow from frame A to frame B (`segkit flow A.png B.png --out F.flo`).")

  enum Method: String, ExpressibleByArgument, CaseIterable {
    case dis
    /// flownet2-pytorch's FlowNet2-S (its checkpoint loads as it is).
    case flownet2s
    /// DVSNet's thin FlowNetS (3/8 of the widths), with SegKit's weights.
    case flownetsThin = "flownets_thin"
  }

  @Argument(help: "Frame A (the flow starts here).")
  var from: String

  @Argument(help: "Frame B, of A's size.")
  var to: String

  @Option(help: "The .flo file to write.")
  var out: String

  @Option(help: "The method: dis (OpenCV's dense inverse search), flownet2s or flownets_thin (with --weights).")
  var method = Method.dis

  @Option(help: "DIS's preset: ultrafast, fast or medium (slower, finer).")
  var preset = "fast"

  @Option(help: "The network's weights for flownet2s (flownet2-pytorch's FlowNet2-S_checkpoint.pth.tar as it is) or flownets_thin.")
  var weights: String?

  @Option(help: "Device for the networks: auto (the first CUDA device, else the CPU), cpu, cuda, cuda:N or mps.")
  var device = "cpu"

  func validate() throws {
    switch (method, weights) {
    case (.dis, .some): throw ValidationError("--weights is for the flow networks (flownet2s, flownets_thin), not dis")
    case (.flownet2s, nil), (.flownetsThin, nil): throw ValidationError("--method \(method.rawValue) needs --weights")
    default: break
    }
  }

  func run() throws {
    guard let chosen = OpticalFlow.Preset.allCases.first(where: { "\($0)" == preset }) else {
      throw ValidationError("--preset must be ultrafast, fast or medium, not '\(preset)'")
    }
    let output = try writableFile(out, option: "--out")
    let (a, b) = (try ImageIO.read(URL(fileURLWithPath: from)), try ImageIO.read(URL(fileURLWithPath: to)))
    guard a.width == b.width, a.height == b.height else {
      throw CommandError("\(to) is \(b.width)×\(b.height), \(from) \(a.width)×\(a.height): the frames must be the same size")
    }
    let start = Date()
    let flow: FlowField
    switch method {
    case .dis: flow = try OpticalFlow.dis(from: a, to: b, preset: chosen)
    case .flownet2s, .flownetsThin:
      let network = try NetworkFlow(widths: method == .flownet2s ? .full : .thin, weights: URL(fileURLWithPath: weights ?? ""),
                                    device: try resolveDevice(device))
      flow = try network.flow(from: a, to: b)
    }
    try FlowFile.write(flow, to: output)
    print("flow \(a.width)×\(a.height) (\(method == .dis ? "dis, \(preset)" : method.rawValue)) in "
      + String(format: "%.2f s", Date().timeIntervalSince(start)) + ": \(output.path)")
  }
}

struct FlowShow: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "show", abstract: "Render a .flo file with the Middlebury colour wheel (hue: direction; saturation: length).")

  @Argument(help: "The .flo file.")
  var flow: String

  @Option(help: "The PNG to write.")
  var out: String

  @Option(help: "The displacement (pixels) shown at full saturation; default: the field's largest.")
  var maxFlow: Double?

  func run() throws {
    if let maxFlow, !(maxFlow > 0 && maxFlow.isFinite) { throw ValidationError("--max-flow must be positive") }
    let output = try writableFile(out, option: "--out")
    let field = try FlowFile.read(URL(fileURLWithPath: flow))
    try ImageIO.writePNG(FlowColor.render(field, maximum: maxFlow), to: output)
    print("\(output.path)")
  }
}

struct FlowWarpCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "warp",
    abstract: "Sample a mask or an image at x + F(x): out(x) = input(x + F(x)), bilinear, zero outside.",
    discussion: """
      To carry the mask of frame t−1 to frame t, give the flow from t to t−1 (`segkit flow \\
      frame_t.png frame_t-1.png --out F.flo`): each pixel of frame t looks up where its \\
      content was. The flow from t−1 to t moves the mask the wrong way. A mask's objects \\
      (its non-zero ids) are each warped and kept where above 1/2.
      """)

  @Option(help: "A mask PNG (object ids; 0 background) to warp.")
  var mask: String?

  @Option(help: "An image to warp.")
  var image: String?

  @Option(help: "The .flo file, of the input's size.")
  var flow: String

  @Option(help: "The PNG to write.")
  var out: String

  func validate() throws {
    guard (mask == nil) != (image == nil) else { throw ValidationError("give one of --mask or --image") }
  }

  func run() throws {
    let output = try writableFile(out, option: "--out")
    let field = try FlowFile.read(URL(fileURLWithPath: flow))
    if let mask {
      let labels = try ImageIO.readLabel(URL(fileURLWithPath: mask))
      guard labels.width == field.width, labels.height == field.height else {
        throw CommandError("\(flow) is \(field.width)×\(field.height), the mask \(mask) \(labels.width)×\(labels.height): they must be the same size")
      }
      try ImageIO.writePNG(try FlowWarp.warp(mask: labels, by: field), to: output, palette: .pascal)
    } else if let image {
      let picture = try ImageIO.read(URL(fileURLWithPath: image))
      guard picture.width == field.width, picture.height == field.height else {
        throw CommandError("\(flow) is \(field.width)×\(field.height), the image \(image) \(picture.width)×\(picture.height): they must be the same size")
      }
      try ImageIO.writePNG(try FlowWarp.warp(image: picture, by: field), to: output)
    }
    print("\(output.path)")
  }
}

struct FlowCacheCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "cache",
    abstract: "Compute and keep the flows of a DAVIS split: for every frame t, t → t−1 and t → t+1.",
    discussion: """
      Writes <cache>/<sequence>/<frame>.backward.flo (t → t−1, what carries frame t−1's mask \
      to t) and <frame>.forward.flo (t → t+1), and <cache>/settings.json. Flows already there \
      are kept; a cache made with other settings (method, preset, weights) is refused. Default \
      cache: ROOT/FlowCache. A MaskRNN run with flow_method flownet2s or flownets_thin and \
      flow_weights reads the cache this fills with --method and --weights.
      """)

  @OptionGroup var davis: DAVISArguments

  @Option(help: "The cache folder (default: FlowCache inside the DAVIS root).")
  var cache: String?

  @Option(help: "DIS's preset: ultrafast, fast or medium.")
  var preset = "fast"

  @Option(help: "The method: dis, flownet2s or flownets_thin (with --weights; a network computes one frame at a time).")
  var method = FlowCompute.Method.dis

  @Option(help: "The flow network's weights for flownet2s or flownets_thin.")
  var weights: String?

  @Option(help: "Device for the networks: auto, cpu, cuda, cuda:N or mps.")
  var device = "cpu"

  @Option(help: "Frames computed at once (DIS).")
  var workers = 2

  func validate() throws {
    guard davis.davis != nil else { throw ValidationError("--davis ROOT and --year 2016|2017 are required") }
    switch (method, weights) {
    case (.dis, .some): throw ValidationError("--weights is for the flow networks (flownet2s, flownets_thin), not dis")
    case (.flownet2s, nil), (.flownetsThin, nil): throw ValidationError("--method \(method.rawValue) needs --weights")
    default: break
    }
    guard OpticalFlow.Preset.allCases.contains(where: { "\($0)" == preset }) else {
      throw ValidationError("--preset must be ultrafast, fast or medium, not '\(preset)'")
    }
    guard (1...64).contains(workers) else { throw ValidationError("--workers must be 1 to 64") }
  }

  func run() throws {
    let dataset = try davis.dataset()
    let folder = cache.map { URL(fileURLWithPath: $0) } ?? FlowCache.defaultFolder(forDatasetAt: URL(fileURLWithPath: davis.davis ?? "."))
    let chosen = OpticalFlow.Preset.allCases.first { "\($0)" == preset } ?? .fast
    let flowMethod: FlowMethod = method == .dis ? .dis(chosen)
      : try NetworkFlow(widths: method == .flownet2s ? .full : .thin, weights: URL(fileURLWithPath: weights ?? ""),
                        device: try resolveDevice(device)).method
    let flows = try FlowCache(folder: folder, method: flowMethod)
    let start = Date()
    let computed = try flows.fill(dataset.sequences, workers: workers)
    let frames = dataset.sequences.reduce(0) { $0 + $1.frames.count }
    print("\(dataset.sequences.count) sequences, \(frames) frames: \(computed) computed, \(frames - computed) already cached, "
      + String(format: "%.1f s", Date().timeIntervalSince(start)))
    print("cache: \(folder.path)")
  }
}
