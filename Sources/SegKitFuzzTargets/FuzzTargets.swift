import Foundation
import SegKitData
import SegKitTensor
import SegKitTraining

/// The parsers of untrusted files, each as a fuzz target: any bytes in, and the
/// parser must either read them or throw, never trap, hang or ask for gigabytes.
/// Run by libFuzzer (`scripts/fuzz.sh`), by the test suite's bounded mutation run,
/// and on every regression file under Tests/Fuzz/Regressions/<target>/.
public enum FuzzTarget: String, CaseIterable, Sendable {
  case mat, flo, pth, safetensors, yaml, png, jpeg
  /// Binary PPM/PGM frames (FlyingChairs').
  case ppm
  /// A flow cache's settings.json.
  case flowcache
  /// DVSNet's decision samples (`segkit dvs features`), read and sized for training.
  case decisionsamples
  /// YouTube-VOS's meta.json, read against a one-video split (`VideoDataset.youTubeVOS`).
  case youtubevos
  /// A multipart/form-data request body as `segkit serve` splits it (boundary `fuzzboundary`).
  case multipart
  /// A mask request's JSON, `{"object": ID, "rle": {"size": [H, W], "counts": "…"}}`, decoded to pixels.
  case rle

  /// The file name extension its inputs get on disk (the readers take files).
  var fileExtension: String {
    switch self {
    case .mat: return "mat"
    case .flo: return "flo"
    case .pth: return "pth"
    case .safetensors: return "safetensors"
    case .yaml: return "yaml"
    case .png: return "png"
    case .jpeg: return "jpg"
    case .ppm: return "ppm"
    case .flowcache: return "json"
    case .decisionsamples: return "safetensors"
    case .youtubevos: return "json"
    case .multipart: return "form"
    case .rle: return "json"
    }
  }

  /// Feeds `data` to the parser. Returns whether it was accepted; a rejection (an
  /// error thrown) is the expected outcome for most mutated inputs.
  @discardableResult
  public func run(_ data: Data) -> Bool {
    if self == .mat { return (try? MATFile.read(data)) != nil }
    if self == .flo { return (try? FlowFile.decode(data, name: "fuzz.flo")) != nil }
    if self == .ppm { return (try? PortablePixmap.decode(data, name: "fuzz.ppm")) != nil }
    if self == .multipart { return (try? MultipartForm(data, boundary: "fuzzboundary")) != nil }
    if self == .rle {
      struct Body: Decodable { let object: Int; let rle: RunLengthEncoding }
      guard let body = try? JSONDecoder().decode(Body.self, from: data) else { return false }
      return (try? body.rle.mask(value: UInt8(clamping: body.object), maxPixels: 1 << 22)) != nil
    }
    let url = Self.scratch.appendingPathComponent("input.\(fileExtension)")
    guard (try? data.write(to: url)) != nil else { return false }
    switch self {
    case .pth, .safetensors: return (try? StateDict.load(contentsOf: url)) != nil
    case .yaml:
      var config = TrainingConfig()
      return (try? config.apply(contentsOf: url)) != nil
    case .png, .jpeg: return (try? ImageIO.read(url)) != nil
    case .flowcache:
      let folder = Self.scratch.appendingPathComponent("FlowCache")
      try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
      guard (try? data.write(to: folder.appendingPathComponent("settings.json"))) != nil else { return false }
      return (try? FlowCache(folder: folder)) != nil
    case .decisionsamples:
      // Read, then the training's memory estimate against a 1 GiB cap: what a file
      // declares must be refused before a network is built for it.
      guard let samples = try? DecisionSamples.read(url) else { return false }
      let previous = MemoryBudget.limit
      defer { MemoryBudget.limit = previous }
      MemoryBudget.limit = 1 << 30
      return (try? DecisionNetworkTraining().checkMemory(for: samples)) != nil
    case .youtubevos:
      // The split's one video, v1, has frame 00000 and its annotation; the files' contents are not read.
      let root = Self.scratch.appendingPathComponent("YouTubeVOS")
      for folder in ["JPEGImages/v1", "Annotations/v1"] {
        try? FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
      }
      FileManager.default.createFile(atPath: root.appendingPathComponent("JPEGImages/v1/00000.jpg").path, contents: Data())
      FileManager.default.createFile(atPath: root.appendingPathComponent("Annotations/v1/00000.png").path, contents: Data())
      guard (try? data.write(to: root.appendingPathComponent("meta.json"))) != nil else { return false }
      return (try? VideoDataset.youTubeVOS(root: root)) != nil
    case .mat, .flo, .ppm, .multipart, .rle: return false
    }
  }

  /// One private folder per process for the inputs that must be files.
  private static let scratch: URL = {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-fuzz-\(getpid())")
    try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
  }()

  /// Removes the scratch folder (call before exiting).
  public static func cleanUp() { try? FileManager.default.removeItem(at: scratch) }
}

/// Deterministic mutations of a seed file, as a small mutation fuzzer makes them:
/// bit flips, byte overwrites with boundary values, 32- and 64-bit fields set to
/// extremes, truncation, duplication and splices of the seed's own bytes.
public struct Mutator {
  private var random: SeededRandom

  public init(seed: UInt64) { random = SeededRandom(seed: seed) }

  private mutating func next() -> UInt64 { random.next() }

  private mutating func below(_ bound: Int) -> Int { bound <= 1 ? 0 : random.below(bound) }

  public mutating func mutate(_ seed: [UInt8]) -> [UInt8] {
    var bytes = seed
    for _ in 0...below(4) {
      if bytes.isEmpty { bytes = [UInt8(truncatingIfNeeded: next())] }
      let at = below(bytes.count)
      switch below(7) {
      case 0: bytes[at] ^= 1 << UInt8(below(8))
      case 1: bytes[at] = [0, 1, 0x7F, 0x80, 0xFF][below(5)]
      case 2:
        let extreme: [UInt8] = [[0xFF, 0xFF, 0xFF, 0x7F], [0, 0, 0, 0x80], [0xFF, 0xFF, 0xFF, 0xFF], [0, 0, 0, 0]][below(4)]
        for (i, byte) in extreme.enumerated() where at + i < bytes.count { bytes[at + i] = byte }
      case 3:
        let extreme: UInt64 = [UInt64.max, 1 << 63, 1 << 62, 0x7FF8_0000_0000_0000][below(4)]
        for i in 0..<8 where at + i < bytes.count { bytes[at + i] = UInt8(truncatingIfNeeded: extreme >> (8 * UInt64(i))) }
      case 4: bytes.removeLast(below(bytes.count) + 1)
      case 5:
        let length = min(bytes.count - at, below(64) + 1)
        bytes.insert(contentsOf: bytes[at..<at + length], at: below(bytes.count))
      default:
        let length = min(bytes.count - at, below(16) + 1)
        let to = below(bytes.count)
        let source = Array(bytes[at..<at + length])
        for (i, byte) in source.enumerated() where to + i < bytes.count { bytes[to + i] = byte }
      }
    }
    return bytes
  }
}
