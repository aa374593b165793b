import Foundation

extension Synthetic {
  /// A YouTube-VOS validation split made from a DAVIS 2017 sequence with objects 1 and
  /// 2 (e.g. a synthetic one): its frames as `JPEGImages/<video>/<5·i>.jpg`, object 1's
  /// mask on the first frame and object 2's alone on frame `secondObjectFrame` (where it
  /// "first appears") as `Annotations/<video>/`, and meta.json naming both. Returns `root`.
  @discardableResult
  public static func writeYouTubeVOS(from sequence: VideoSequence, to root: URL, video: String = "v1", secondObjectFrame: Int = 2) throws -> URL {
    let images = root.appendingPathComponent("JPEGImages/\(video)"), annotations = root.appendingPathComponent("Annotations/\(video)")
    try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(at: annotations, withIntermediateDirectories: true)
    var stems: [String] = []
    for (index, frame) in sequence.frames.enumerated() {
      let stem = String(format: "%05d", index * 5)  // YouTube-VOS's validation frames are every fifth
      stems.append(stem)
      try ImageIO.writeJPEG(try ImageIO.read(frame.image), to: images.appendingPathComponent("\(stem).jpg"))
    }
    for (object, index) in [(UInt8(1), 0), (UInt8(2), secondObjectFrame)] {
      guard index < sequence.frames.count, let url = sequence.frames[index].label?.url else { throw DataError("the sequence's frame \(index) has no annotation") }
      var mask = try ImageIO.readLabel(url)
      for i in mask.pixels.indices { mask.pixels[i] = mask.pixels[i] == object ? object : 0 }
      try ImageIO.writePNG(mask, to: annotations.appendingPathComponent("\(stems[index]).png"), palette: .pascal)
    }
    let meta: [String: Any] = ["videos": [video: ["objects": [
      "1": ["category": "blob", "frames": Array(stems)],
      "2": ["category": "blob", "frames": Array(stems[secondObjectFrame...])],
    ]]]]
    try JSONSerialization.data(withJSONObject: meta).write(to: root.appendingPathComponent("meta.json"))
    return root
  }
}
