import ArgumentParser
import Foundation
import SegKitData

struct DataSynth: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "synth",
    abstract: "Write a small synthetic dataset in a real layout.",
    discussion: """
      semantic: textured shapes (disc, square, triangle, ring, cross) on a background, in the
      Pascal VOC layout (JPEGImages, SegmentationClass palette PNGs, ImageSets/Segmentation).
      video: moving, deforming, occluding textured objects in the DAVIS 2017 layout (palette
      masks of object ids), or with one object the DAVIS 2016 layout (0/255 masks), and the
      exact flow of each frame pair (Flow/480p/<seq>/N.flo: frame N to N+1; BackwardFlow/480p:
      frame N to N-1). --camouflage textures the objects like the background.
      flow: frame pairs with their exact optical flow, FlyingChairs-style (textured shapes
      under their own motions over a moving textured background), in FlyingChairs' layout
      (data/NNNNN_img1.ppm, _img2.ppm, _flow.flo; FlyingChairs_train_val.txt).
      street: street scenes from a camera that stops, goes and turns (sky, buildings, road,
      cars and people that stop and start) as 30-frame snippets in Cityscapes' layout
      (leftImg8bit_sequence, gtFine label ids and flow/…_flow.flo to the next frame for every
      frame, the 20th also in leftImg8bit), for video semantic segmentation.
      The same seed and options always give the same files.
      """
  )

  enum Kind: String, ExpressibleByArgument, CaseIterable { case semantic, video, flow, street }

  @Option(help: "What to generate: semantic, video, flow or street.")
  var kind: Kind

  @Option(help: "Output folder (created if missing).")
  var out: String

  @Option(help: "Random seed.")
  var seed: UInt64 = 0

  @Option(help: "Training images (semantic), sequences (video), pairs (flow) or snippets (street). Default 300, 8, 400 or 40.")
  var train: Int?

  @Option(help: "Validation images (semantic), sequences (video), pairs (flow) or snippets (street). Default 50, 4, 40 or 8.")
  var val: Int?

  @Option(help: "Image size, HxW (height first) or one number for a square. Default 96x96 (semantic), 96x128 (video, flow) or 64x128 (street).")
  var imageSize: String?

  @Option(help: ArgumentHelp("Deprecated: the image size as WIDTHxHEIGHT; use --image-size HxW.", visibility: .hidden))
  var size: String?

  @OptionGroup var content: SynthContentArguments

  @Flag(help: "Write into --out even if it already holds files (they may be replaced).")
  var force = false

  func validate() throws {
    for (name, value) in [("--train", train), ("--val", val)] where (value ?? 0) < 0 {
      throw ValidationError("\(name) must not be negative")
    }
    if imageSize != nil && size != nil { throw ValidationError("give --image-size HxW alone (--size is its deprecated form)") }
    try content.check(video: kind == .video)
  }

  func run() throws {
    let (frames, objects, layout) = (content.frames, content.objects, content.layout)
    let root = URL(fileURLWithPath: out)
    // An existing dataset's split lists and class names would be replaced by the synthetic ones.
    if !force, let existing = try? FileManager.default.contentsOfDirectory(atPath: root.path), !existing.isEmpty {
      let shown = existing.sorted().prefix(3).joined(separator: ", ") + (existing.count > 3 ? ", …" : "")
      throw ValidationError("--out \(out) already holds files (\(shown)): "
        + "choose an empty or new folder, or --force to write into it")
    }
    if size != nil { deprecated("--size WIDTHxHEIGHT", use: "--image-size HxW (height first)") }
    let chosenSize = try self.chosenSize()
    let start = Date()
    switch kind {
    case .semantic:
      var options = Synthetic.SemanticOptions()
      options.seed = seed
      if let train { options.trainCount = train }
      if let val { options.valCount = val }
      if let chosenSize { (options.width, options.height) = chosenSize }
      try Synthetic.writeSemantic(to: root, options: options)
      print("wrote \(options.trainCount) train + \(options.valCount) val synthetic scenes (\(options.height)x\(options.width), "
        + "classes: \(Synthetic.semanticClassNames.joined(separator: ", "))) in the VOC layout to \(root.path)")
    case .video:
      var options = Synthetic.VideoOptions()
      options.seed = seed
      options.frames = frames ?? 24
      (options.objects, options.camouflage) = (objects, content.camouflage)
      if let train { options.trainSequences = train }
      if let val { options.valSequences = val }
      if let chosenSize { (options.width, options.height) = chosenSize }
      options.layout = layout.flatMap(Synthetic.VideoLayout.init(rawValue:)) ?? (objects == 1 ? .davis2016 : .davis2017)
      try Synthetic.writeVideo(to: root, options: options)
      print("wrote \(options.trainSequences) train + \(options.valSequences) val synthetic sequences of \(options.frames) frames "
        + "(\(options.height)x\(options.width)) in the \(options.layout.rawValue) layout to \(root.path)")
    case .flow:
      var options = Synthetic.FlowOptions()
      options.seed = seed
      if let train { options.trainCount = train }
      if let val { options.valCount = val }
      if let chosenSize { (options.width, options.height) = chosenSize }
      options.maximumShift = content.maxShift ?? options.maximumShift
      guard options.width >= 8, options.height >= 8 else { throw ValidationError("--image-size: flow pairs need at least 8x8 pixels") }
      try Synthetic.writeFlowPairs(to: root, options: options)
      print("wrote \(options.trainCount) train + \(options.valCount) val synthetic frame pairs with their flow "
        + "(\(options.height)x\(options.width)) in the FlyingChairs layout to \(root.path)")
    case .street:
      var options = Synthetic.StreetOptions()
      options.seed = seed
      if let frames {
        options.frames = frames
        options.annotatedFrame = min(19, frames - 1)
      }
      if let train { options.trainSnippets = train }
      if let val { options.valSnippets = val }
      if let chosenSize { (options.width, options.height) = chosenSize }
      try Synthetic.writeStreet(to: root, options: options)
      print("wrote \(options.trainSnippets) train + \(options.valSnippets) val synthetic street snippets of \(options.frames) frames "
        + "(\(options.height)x\(options.width), frame \(options.annotatedFrame + 1) annotated; classes: "
        + Synthetic.streetLabelIds.map(\.name).joined(separator: ", ") + ") in the Cityscapes layout to \(root.path)")
    }
    print(String(format: "took %.1f s", Date().timeIntervalSince(start)))
  }

  /// (width, height) from --image-size HxW, or from the deprecated --size WIDTHxHEIGHT.
  private func chosenSize() throws -> (width: Int, height: Int)? {
    guard let text = imageSize ?? size else { return nil }
    let option = imageSize != nil ? "--image-size" : "--size"
    let parsed = try parseSize(text, option: option)
    // --size was width first: its first number is the width.
    let (height, width) = imageSize != nil ? (parsed.height, parsed.width) : (parsed.width, parsed.height)
    guard (1...4096).contains(width), (1...4096).contains(height) else { throw ValidationError("\(option) '\(text)': at most 4096 a side") }
    return (width, height)
  }
}
