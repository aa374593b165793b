import Foundation

/// Objects in a label map: the connected regions (4-neighbours) of chosen classes,
/// each with its bounding box, and how far a ground-plane pinhole camera puts them.
public enum ObjectBoxes {
  public struct Box: Sendable, Equatable {
    public let label: UInt8
    /// Inclusive pixel bounds.
    public let left: Int, top: Int, right: Int, bottom: Int
    public let area: Int

    public init(label: UInt8, left: Int, top: Int, right: Int, bottom: Int, area: Int) {
      (self.label, self.left, self.top, self.right, self.bottom, self.area) = (label, left, top, right, bottom, area)
    }
  }

  /// The regions of `classes` with at least `minimumArea` pixels, largest first.
  public static func find(in labels: Image, classes: Set<UInt8>, minimumArea: Int = 1) -> [Box] {
    guard labels.channels == 1, !classes.isEmpty else { return [] }
    let (width, height) = (labels.width, labels.height)
    var seen = [Bool](repeating: false, count: width * height)
    var boxes: [Box] = []
    var stack: [Int] = []
    for start in 0..<(width * height) where !seen[start] && classes.contains(labels.pixels[start]) {
      let label = labels.pixels[start]
      var (left, top, right, bottom, area) = (Int.max, Int.max, -1, -1, 0)
      seen[start] = true
      stack.append(start)
      while let index = stack.popLast() {
        let (x, y) = (index % width, index / width)
        (left, top, right, bottom, area) = (min(left, x), min(top, y), max(right, x), max(bottom, y), area + 1)
        for (nx, ny) in [(x - 1, y), (x + 1, y), (x, y - 1), (x, y + 1)] where nx >= 0 && ny >= 0 && nx < width && ny < height {
          let neighbour = ny * width + nx
          if !seen[neighbour] && labels.pixels[neighbour] == label {
            seen[neighbour] = true
            stack.append(neighbour)
          }
        }
      }
      if area >= minimumArea { boxes.append(Box(label: label, left: left, top: top, right: right, bottom: bottom, area: area)) }
    }
    return boxes.sorted { $0.area > $1.area }
  }
}

/// The distance along the ground to a point where an object stands, from a pinhole
/// camera at `height` metres above flat ground with a level optical axis: a ground
/// point imaged `v − horizon` pixels below the horizon row lies at
/// Z = focal length × height / (v − horizon). It assumes the box's lowest row touches
/// the ground and the ground is a plane; it is not a range measurement, and points at
/// or above the horizon have no distance.
public struct GroundPlaneCamera: Sendable, Equatable {
  /// Camera height above the ground, metres.
  public let height: Double
  /// Focal length, pixels.
  public let focalLength: Double
  /// Image row of the horizon (where the optical axis meets the image for a level camera).
  public let horizon: Double

  public init(height: Double, focalLength: Double, horizon: Double) throws {
    guard height > 0, height.isFinite, focalLength > 0, focalLength.isFinite, horizon.isFinite else {
      throw InferenceError("a camera at \(height) m with a \(focalLength) px focal length and the horizon at row \(horizon): height and focal length must be positive")
    }
    (self.height, self.focalLength, self.horizon) = (height, focalLength, horizon)
  }

  /// Metres to a ground point at image row `row` (its lower edge: row + 1), or nil at or above the horizon.
  public func distance(toGroundRow row: Int) -> Double? {
    let below = Double(row) + 1 - horizon
    return below > 0 ? focalLength * height / below : nil
  }
}

/// Draws boxes around the connected regions of chosen classes in each frame, captioned
/// with the class and the distance a ground-plane camera gives (set from the first
/// frame's size where the focal length or horizon is not given).
public struct BoxAnnotator {
  public let classes: [UInt8: String]
  public let colormap: Colormap
  public var minimumArea = 40
  public var cameraHeight = 1.5
  public var focalLength: Double?
  public var horizon: Double?
  private var camera: GroundPlaneCamera?

  /// `names`: the classes to box, each one of `classNames` (the model's).
  public init(names: [String], classNames: [String], colormap: Colormap) throws {
    var classes: [UInt8: String] = [:]
    for name in names {
      guard let index = classNames.firstIndex(of: name), index < 256 else {
        throw InferenceError("the model has no class '\(name)' (its classes: \(classNames.joined(separator: ", ")))")
      }
      classes[UInt8(index)] = name
    }
    self.classes = classes
    self.colormap = colormap
  }

  /// Boxes and captions `frame` after the regions of `labels`.
  public mutating func annotate(_ frame: inout Image, labels: Image) throws {
    if camera == nil {
      camera = try GroundPlaneCamera(height: cameraHeight, focalLength: focalLength ?? Double(labels.width),
                                     horizon: horizon ?? Double(labels.height) / 2)
    }
    for box in ObjectBoxes.find(in: labels, classes: Set(classes.keys), minimumArea: minimumArea) {
      let color = colormap.colors.indices.contains(Int(box.label)) ? colormap.colors[Int(box.label)] : (255, 255, 255)
      frame.strokeRectangle(x: box.left, y: box.top, width: box.right - box.left + 1, height: box.bottom - box.top + 1,
                            color: [color.0, color.1, color.2], thickness: 2)
      let caption = (classes[box.label] ?? "") + (camera!.distance(toGroundRow: box.bottom).map { String(format: " %.1fM", $0) } ?? "")
      let size = BitmapFont.size(of: caption)
      let y = max(0, box.top - size.height - 3)
      frame.fill(x: box.left, y: y, width: size.width + 4, height: size.height + 3, color: [20, 20, 20])
      BitmapFont.draw(caption, into: &frame, x: box.left + 2, y: y + 2, color: [255, 255, 255])
    }
  }
}
