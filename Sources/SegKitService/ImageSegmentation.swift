import Foundation
import Hummingbird
import SegKitData
import SegKitInference

/// POST /v1/segment: an image (the body, or the `image` part of a form) segmented by one
/// of the served models, answered as a label PNG, a colour mask, an overlay or JSON.
struct SegmentRequest {
  enum Format: String, CaseIterable { case png, color, overlay, json }

  var image: Data
  var model: String?
  var format = Format.png
  var scales: [Double]?
  var flip: Bool?
  var alpha = 0.5

  /// The request's image and options: query parameters, and form fields over them.
  init(body: Data, contentType: String?, query: [String: String]) throws {
    var options = query
    if let contentType, let boundary = try Self.boundary(contentType) {
      let form: MultipartForm
      do { form = try MultipartForm(body, boundary: boundary) } catch { throw ServiceError.badRequest("\(error)") }
      guard let part = form["image"] else { throw ServiceError.badRequest("the form has no 'image' part") }
      image = part.body
      options.merge(form.fields) { $1 }
    } else {
      image = body
    }
    guard !image.isEmpty else { throw ServiceError.badRequest("no image: send it as the body or as the form's 'image' part") }
    model = options["model"]
    if let text = options["format"] {
      guard let format = Format(rawValue: text) else {
        throw ServiceError.badRequest("format must be \(Format.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text.prefix(40))'")
      }
      self.format = format
    }
    if let text = options["scales"] {
      let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Double($0.trimmingCharacters(in: .whitespaces)) }
      guard !values.isEmpty, values.count <= 8, values.allSatisfy({ $0 != nil && $0! > 0 && $0! <= 4 }) else {
        throw ServiceError.badRequest("scales must be 1 to 8 numbers in (0, 4] separated by commas, got '\(text.prefix(40))'")
      }
      scales = values.map { $0! }
    }
    if let text = options["flip"] {
      switch text.lowercased() {
      case "1", "true", "yes": flip = true
      case "0", "false", "no": flip = false
      default: throw ServiceError.badRequest("flip must be true or false, got '\(text.prefix(40))'")
      }
    }
    if let text = options["alpha"] {
      guard let value = Double(text), (0...1).contains(value) else { throw ServiceError.badRequest("alpha must be in [0, 1], got '\(text.prefix(40))'") }
      alpha = value
    }
  }

  private static func boundary(_ contentType: String) throws -> String? {
    do { return try MultipartForm.boundary(contentType: contentType) } catch { throw ServiceError.badRequest("\(error)") }
  }

  /// The model's settings with this request's scales and flip over them.
  func settings(for model: ServedModel) throws -> InferenceSettings {
    try InferenceSettings(scales: scales ?? model.settings.scales, flip: flip ?? model.settings.flip,
                          crop: model.settings.crop, overlap: model.settings.overlap)
  }
}

/// The answer to a segment request in each format.
enum SegmentAnswer {
  struct Summary: Encodable {
    struct ClassShare: Encodable { let id: Int; let name: String; let pixels: Int }
    struct Mask: Encodable { let id: Int; let name: String; let rle: RunLengthEncoding }
    let height: Int
    let width: Int
    let model: String
    let classes: [ClassShare]
    let masks: [Mask]
  }

  static func response(labels: Image, image: Image, model: ServedModel, request: SegmentRequest) throws -> Response {
    let (data, type): (Data, String)
    switch request.format {
    case .png: (data, type) = (try ImageIO.pngData(labels, palette: model.palette), "image/png")
    case .color: (data, type) = (try ImageIO.pngData(model.palette.colorize(labels)), "image/png")
    case .overlay:
      let writer = try PredictionWriter(palette: model.palette, alpha: request.alpha)
      (data, type) = (try ImageIO.jpegData(writer.blend(image: image, labels: labels), quality: 90), "image/jpeg")
    case .json: (data, type) = (JSON.encode(summary(labels: labels, model: model)), "application/json")
    }
    return Response(status: .ok, headers: [.contentType: type],
                    body: .init(byteBuffer: ByteBuffer(data: data)))
  }

  static func summary(labels: Image, model: ServedModel) -> Summary {
    var counts = [Int](repeating: 0, count: 256)
    for value in labels.pixels { counts[Int(value)] += 1 }
    let names = model.classNames
    let present = counts.indices.filter { counts[$0] > 0 }
    func name(_ id: Int) -> String { id < names.count ? names[id] : "class \(id)" }
    return Summary(
      height: labels.height, width: labels.width, model: model.name,
      classes: present.map { .init(id: $0, name: name($0), pixels: counts[$0]) },
      masks: present.map { .init(id: $0, name: name($0), rle: RunLengthEncoding(labels: labels, value: UInt8($0))) })
  }
}

/// GET /v1/models: what each served model is.
struct ModelDescription: Encodable {
  struct ClassInfo: Encodable { let id: Int; let name: String; let color: [Int] }
  let name: String
  let architecture: String
  let task: String
  let precision: String
  let classes: [ClassInfo]
  let scales: [Double]
  let flip: Bool
  let input: String

  init(_ model: ServedModel) {
    name = model.name
    architecture = model.manifest.model
    task = model.manifest.task.rawValue
    precision = model.precision.rawValue
    let colors = model.palette.colors
    classes = model.classNames.enumerated().map { id, name in
      let c = id < colors.count ? colors[id] : (0, 0, 0)
      return ClassInfo(id: id, name: name, color: [Int(c.0), Int(c.1), Int(c.2)])
    }
    scales = model.settings.scales
    flip = model.settings.flip
    input = "RGB image of any size (JPEG or PNG), normalised as the run was trained"
  }
}
