import ArgumentParser
import SegKitData

/// What `segkit data synth` draws beyond counts and size: frames, objects and layout of
/// videos and snippets, camouflage, and how far flow pairs move.
struct SynthContentArguments: ParsableArguments {
  @Option(help: "Frames per sequence (video; default 24) or snippet (street; default 30, the 20th annotated).")
  var frames: Int?

  @Option(help: "Objects per sequence (video); by default 1 to 3 at random. 1 selects the DAVIS 2016 layout unless --layout says otherwise.")
  var objects: Int?

  @Option(help: "Video layout: davis2017 or davis2016.")
  var layout: String?

  @Flag(help: "Video: objects textured like the background, so that only their motion shows them.")
  var camouflage = false

  @Option(help: "Flow pairs: the largest shift of a shape, px (default 8; the background moves half as far). 40 covers street keys 9 frames old.")
  var maxShift: Double?

  func check(video: Bool) throws {
    if let maxShift, !(0...256).contains(maxShift) { throw ValidationError("--max-shift must be 0 to 256 px, got \(maxShift)") }
    if let frames, !(1...1000).contains(frames) { throw ValidationError("--frames must be 1 to 1000") }
    if let layout, Synthetic.VideoLayout(rawValue: layout) == nil {
      throw ValidationError("--layout '\(layout)': expected davis2017 or davis2016")
    }
    if !video && (objects != nil || layout != nil || camouflage) {
      throw ValidationError("--objects, --layout and --camouflage apply to --kind video")
    }
  }
}
