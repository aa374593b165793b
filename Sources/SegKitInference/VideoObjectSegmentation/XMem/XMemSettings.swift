/// XMem's inference settings, with XMem's defaults (its `eval.py`).
public struct XMemSettings: Codable, Equatable, Sendable {
  /// Frames are resized so that their shorter side is this many pixels; nil keeps them.
  public var size: Int? = 480
  /// A memory frame every this many frames (and every frame given a mask).
  public var memEvery = 5
  /// Memory elements each query reads (top-k softmax).
  public var topK = 30
  /// Working memory is consolidated when it holds this many frames…
  public var maxMidTermFrames = 10
  /// …keeping its first frame and the newest `minMidTermFrames − 1`.
  public var minMidTermFrames = 5
  /// Long-term elements made by one consolidation.
  public var prototypes = 128
  /// The cap on long-term memory; the least used elements go first.
  public var maxLongTermElements = 10_000
  /// Whether there is long-term memory at all (without it, working memory grows with the video).
  public var longTerm = true

  public init() {}

  /// "size 480, mem_every 5, top_k 30, mid-term 5–10 frames, 128 prototypes, long-term ≤ 10000".
  public var summary: String {
    let longTermPart = longTerm ? "\(prototypes) prototypes, long-term ≤ \(maxLongTermElements)" : "no long-term memory"
    return "size \(size.map(String.init) ?? "kept"), mem_every \(memEvery), top_k \(topK), "
      + "mid-term \(minMidTermFrames)–\(maxMidTermFrames) frames, \(longTermPart)"
  }

  /// Checks the settings together; the error names the setting as a flag.
  public func validated() throws -> XMemSettings {
    func require(_ condition: Bool, _ problem: String) throws {
      if !condition { throw InferenceError("XMem settings: \(problem)") }
    }
    if let size {
      // An upper bound so that a mistyped size is an error, not an allocation of gigabytes.
      try require((16...4096).contains(size), "--size must be 16…4096 (or -1 to keep the frames' size), got \(size)")
    }
    try require(memEvery >= 1, "--mem-every must be at least 1, got \(memEvery)")
    try require(topK >= 1, "--top-k must be at least 1, got \(topK)")
    try require(minMidTermFrames >= 2, "--min-mid-term-frames must be at least 2, got \(minMidTermFrames)")
    try require(maxMidTermFrames > minMidTermFrames,
                "--max-mid-term-frames (\(maxMidTermFrames)) must be above --min-mid-term-frames (\(minMidTermFrames))")
    try require(prototypes >= 1, "--num-prototypes must be at least 1, got \(prototypes)")
    try require(maxLongTermElements > prototypes,
                "--max-long-term-elements (\(maxLongTermElements)) must be above --num-prototypes (\(prototypes))")
    return self
  }
}
