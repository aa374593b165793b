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

  @Argument(help: "Frame A (the flow starts here).")
  var from: String

  @Argument(help: "Frame B, of A's size.")
  var to: String

  @Option(help: "The .flo file to write.")
  var out: String

  @OptionGroup var flowMethod: FlowMethodArguments

  func run() throws {
    let output = try writableFile(out, option: "--out")
    let (a, b) = (try ImageIO.read(URL(fileURLWithPath: from)), try ImageIO.read(URL(fileURLWithPath: to)))
    guard a.width == b.width, a.height == b.height else {
      throw CommandError("\(to) is \(b.width)×\(b.height), \(from) \(a.width)×\(a.height): the frames must be the same size")
    }
    let start = Date()
    let flow = try flowMethod.flowMethod().compute(a, b)
    try FlowFile.write(flow, to: output)
    print("flow \(a.width)×\(a.height) (\(flowMethod.summary)) in " + String(format: "%.2f s", Date().timeIntervalSince(start)) + ": \(output.path)")
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
