import ArgumentParser
import Foundation
import SegKitTraining

struct Predict: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Segment an image with a model and write its labels (and, on request, its logits).",
    discussion: """
      The image is normalised with ImageNet's mean and standard deviation. The label map is \
      written as a palette PNG: its indices are the class ids, its colours the dataset colormap.
      """
  )

  @Option(help: "Model name (see `segkit models`).")
  var model: String

  @Option(help: "Weights: a full model checkpoint or an encoder's ImageNet checkpoint (.pth or .safetensors).")
  var weights: String?

  @Option(help: "Number of classes (default: what the checkpoint was trained for, else 21).")
  var classes: Int?

  @Option(help: "Input image (JPEG or PNG).")
  var input: String

  @Option(help: "'none' to run at the image's own size, or the length of the shorter side to resize to.")
  var resize: String = "none"

  @Option(help: "Folder for the label PNG, named after the input.")
  var output: String = "predictions"

  @Option(help: "Also write the logits as safetensors: `out` (and `aux`), [1, C, H, W] float32.")
  var saveLogits: String?

  @Option(help: "Colormap of the label PNG: pascal, cityscapes, ade20k or camvid.")
  var colormap: String = "pascal"

  @Option(help: "Device: cpu, cuda, cuda:N or mps.")
  var device: String = "cpu"

  func run() throws {
    let shorterSide: Int?
    switch resize {
    case "none": shorterSide = nil
    case let text: guard let side = Int(text), side > 0 else {
        throw ValidationError("--resize must be 'none' or a positive length, got '\(text)'")
      }
      shorterSide = side
    }
    let palette = try Colormap.named(colormap)
    let device = try Device(parsing: device)
    let checkpoint = try weights.map { try StateDict.load(contentsOf: URL(fileURLWithPath: $0)) }
    let classCount = try classes ?? checkpoint.flatMap { try SegKitTraining.classCount(of: $0, model: model) } ?? 21
    let network = try ModelZoo.make(model, classes: classCount)
    if let checkpoint {
      do {
        try ModelZoo.loadWeights(checkpoint, into: network)
      } catch {
        throw CommandError("\(weights!): does not fit \(model) with \(classCount) classes: \(error)")
      }
    }
    let image = try ImageIO.read(URL(fileURLWithPath: input))
    let output = try Predictor(model: network, device: device, optimize: saveLogits == nil)
      .logits(image, shorterSide: shorterSide)

    let folder = URL(fileURLWithPath: self.output)
    try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    let stem = URL(fileURLWithPath: input).deletingPathExtension().lastPathComponent
    let labelsURL = folder.appendingPathComponent("\(stem).png")
    try ImageIO.writePNG(try Predictor.labels(output.out), to: labelsURL, palette: palette)
    print("labels: \(labelsURL.path)")
    if let saveLogits {
      var logits = try StateDict([("out", output.out.contiguous())])
      if let aux = output.aux { logits.set("aux", try aux.contiguous()) }
      try logits.save(to: URL(fileURLWithPath: saveLogits))
      print("logits: \(saveLogits)")
    }
  }
}
