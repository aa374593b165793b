import Foundation
import SegKitModels

/// XMem's three memories and the passage between them (its `MemoryManager`):
/// - sensory memory: the hidden state, one map per object;
/// - working memory: every memory frame's keys and values, until it holds
///   `maxMidTermFrames` frames;
/// - long-term memory: when working memory is full, everything but its first frame and
///   newest `minMidTermFrames − 1` frames is consolidated into `prototypes` elements
///   (the most used keys, their values read from the candidates: "potentiation") and
///   appended; past `maxLongTermElements`, the least used long-term elements go.
/// Its size is therefore bounded by the settings, whatever the video's length.
final class XMemMemory {
  let settings: XMemSettings
  let working: XMemMemoryStore
  let longTerm: XMemMemoryStore
  /// The hidden state [1, objects, C^h, h, w]; nil before the first mask or without one.
  var hidden: Tensor?
  /// Tokens per frame at stride 16, fixed by the first memory frame.
  private var tokensPerFrame: Int?
  /// How many times working memory was consolidated into long-term memory.
  private(set) var consolidations = 0

  init(settings: XMemSettings) {
    self.settings = settings
    working = XMemMemoryStore(countsUsage: settings.longTerm)
    // Counting long-term usage changes no output: it only decides which elements the
    // cap removes, and XMem counts whenever the cap can be reached.
    longTerm = XMemMemoryStore(countsUsage: true)
  }

  private var usesLongTerm: Bool { settings.longTerm && longTerm.isEngaged }

  /// Reads the memory for a query's key and selection [1, C^k, h, w]: each object's
  /// readout [objects, C^v, h, w]. Each group is read with its own top-k softmax, over
  /// the keys it has values for.
  func read(queryKey: Tensor, selection: Tensor?) throws -> Tensor {
    guard let workingKey = working.key, let workingShrinkage = working.shrinkage else {
      throw InferenceError("XMem: the memory is read before any frame was memorised")
    }
    let (h, w) = (queryKey.shape[2], queryKey.shape[3])
    let qk = try queryKey.flatten(startDim: 2), qe = try selection?.flatten(startDim: 2)
    let topK = settings.topK
    var affinities: [XMemAffinity] = []
    var groupValues: [Tensor] = []
    if usesLongTerm, let longKey = longTerm.key, let longShrinkage = longTerm.shrinkage {
      let longSize = longTerm.size
      let similarity = try XMemMemoryReading.similarity(
        memoryKey: Tensor.cat([longKey, workingKey], dim: 2), shrinkage: Tensor.cat([longShrinkage, workingShrinkage], dim: 2),
        queryKey: qk, selection: qe)
      let workingSimilarity = try similarity.slice(dim: 1, start: longSize)
      let longSimilarity = try similarity.slice(dim: 1, start: 0, end: longSize)
      func newest(_ t: Tensor, _ n: Int) throws -> Tensor { try t.slice(dim: 1, start: t.shape[1] - n) }
      let first = try XMemMemoryReading.softmax(
        Tensor.cat([newest(longSimilarity, longTerm.valueSize(group: 0)), workingSimilarity], dim: 1), topK: topK)
      affinities.append(first)
      for group in 1..<max(1, working.groupCount) {
        let candidates = group < longTerm.groupCount
          ? try Tensor.cat([newest(longSimilarity, longTerm.valueSize(group: group)),
                            newest(workingSimilarity, working.valueSize(group: group))], dim: 1)
          : try newest(workingSimilarity, working.valueSize(group: group))
        affinities.append(try XMemMemoryReading.softmax(candidates, topK: topK))
      }
      for (group, value) in working.values.enumerated() {
        groupValues.append(group < longTerm.groupCount ? try Tensor.cat([longTerm.values[group], value], dim: 2) : value)
      }
      let usage = try first.usage()
      try working.updateUsage(usage.slice(dim: 1, start: longSize).flatten())
      try longTerm.updateUsage(usage.slice(dim: 1, start: 0, end: longSize).flatten())
    } else {
      let similarity = try XMemMemoryReading.similarity(memoryKey: workingKey, shrinkage: workingShrinkage, queryKey: qk, selection: qe)
      let first = try XMemMemoryReading.softmax(similarity, topK: topK)
      if settings.longTerm { try working.updateUsage(first.usage().flatten()) }
      affinities.append(first)
      for group in 1..<max(1, working.groupCount) {
        let newest = try similarity.slice(dim: 1, start: similarity.shape[1] - working.valueSize(group: group))
        affinities.append(try XMemMemoryReading.softmax(newest, topK: topK))
      }
      groupValues = working.values
    }
    let readout = try Tensor.cat(try zip(affinities, groupValues).map { try $0.read($1) }, dim: 0)
    return try readout.view([readout.shape[0], readout.shape[1], h, w])
  }

  /// Memorises a frame: its key and shrinkage [1, C^k | 1, h, w], every object's value
  /// [1, objects, C^v, h, w] with their 1-based ids, and its selection (kept for
  /// consolidation). Consolidates when working memory is full.
  func add(key: Tensor, shrinkage: Tensor, value: Tensor, objects: [Int], selection: Tensor?) throws {
    let frameTokens = key.shape[2] * key.shape[3]
    if tokensPerFrame == nil { tokensPerFrame = frameTokens }
    try working.add(key: key.flatten(startDim: 2), shrinkage: shrinkage.flatten(startDim: 2),
                    selection: try selection?.flatten(startDim: 2), value: value.select(dim: 0, index: 0).flatten(startDim: 2),
                    objects: objects)
    guard settings.longTerm, let tokens = tokensPerFrame else { return }
    let (maximumWorking, prototypes) = (settings.maxMidTermFrames * tokens, settings.prototypes)
    if working.size >= maximumWorking {
      if longTerm.size >= settings.maxLongTermElements - prototypes {
        try longTerm.removeObsolete(keeping: settings.maxLongTermElements - prototypes)
      }
      try consolidate(tokensPerFrame: tokens)
    }
  }

  /// Moves working memory's middle frames into long-term memory as prototypes.
  private func consolidate(tokensPerFrame hw: Int) throws {
    let minimumWorking = settings.minMidTermFrames * hw
    // The candidates: all but the first frame and the newest minMidTermFrames − 1 frames.
    let end = -minimumWorking + hw
    let total = working.size
    let candidateValues: [Tensor?] = try working.values.map { value in
      let size = value.shape[2]
      guard size == total || size > minimumWorking + hw else { return nil }
      return try value.slice(dim: 2, start: hw, end: end)
    }
    let candidates = try working.sliced(start: hw, end: end)
    let n = candidates.key.shape[2]

    // Prototypes: the most used candidates.
    let count = min(settings.prototypes, n)
    let indices = try candidates.usage.topk(count, dim: -1).indices.flatten()
    let prototypeKey = try candidates.key.indexSelect(dim: 2, index: indices)
    let prototypeSelection = try candidates.selection?.indexSelect(dim: 2, index: indices)

    // Potentiation: each prototype's value read from the candidates it is similar to,
    // per group over the candidates that group has values for.
    let similarity = try XMemMemoryReading.similarity(
      memoryKey: candidates.key, shrinkage: candidates.shrinkage, queryKey: prototypeKey, selection: prototypeSelection)
    let positions = try indices.toArray(Int64.self)
    let affinities: [Tensor?] = try candidateValues.map { value in
      guard let value else { return nil }
      let groupSize = value.shape[2]
      let valid = positions.enumerated().filter { $0.element >= Int64(n - groupSize) }.map { Int64($0.offset) }
      guard !valid.isEmpty else { return nil }
      let columns = try similarity.slice(dim: 1, start: n - groupSize).indexSelect(dim: 2, index: Tensor(valid).to(similarity.device))
      return try XMemMemoryReading.softmax(columns, topK: nil).dense()
    }
    let prototypeValues: [Tensor?] = try zip(candidateValues, affinities).map { value, affinity in
      guard let value, let affinity else { return nil }
      return try XMemMemoryReading.readout(affinity, values: value)
    }
    guard let firstAffinity = affinities.first ?? nil, let shrinkage = candidates.shrinkage else {
      throw InferenceError("XMem memory: the first object group has no candidates to consolidate")
    }
    let prototypeShrinkage = try XMemMemoryReading.readout(firstAffinity, values: shrinkage)

    try working.sieve(start: hw, end: end, minimumSize: minimumWorking + hw)
    try longTerm.add(key: prototypeKey, shrinkage: prototypeShrinkage, groupValues: prototypeValues)
    consolidations += 1
  }

  /// Makes room in the hidden state for `objects` objects in all (new ones start at zero).
  func makeHiddenState(objects: Int, channels: Int, like key: Tensor) throws {
    guard channels > 0 else { return }
    let (h, w) = (key.shape[2], key.shape[3])
    let present = hidden?.shape[1] ?? 0
    guard present < objects else { return }
    let added = try Tensor.zeros([1, objects - present, channels, h, w], device: key.device)
    hidden = try hidden.map { try Tensor.cat([$0, added], dim: 1) } ?? added
  }
}
