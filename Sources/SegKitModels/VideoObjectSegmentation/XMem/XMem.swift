import SegKitNN

/// XMem (Cheng and Schwing, ECCV 2022), the network of its figure 2, under XMem's own
/// state-dict keys so that its released `XMem.pth` loads unmodified:
///
///     key_encoder.*    ResNet-50 to layer3 (`res2` is layer1): the query frame's
///                      features at strides 16, 8 and 4
///     key_proj.*       the key, shrinkage and selection from the stride-16 feature
///     value_encoder.*  ResNet-18 to layer3 over the frame and each object's mask,
///                      fused with the key feature (CBAM), and the deep update of
///                      the hidden (sensory) state
///     decoder.*        the memory readout decoded to one logit map per object, and
///                      the hidden state's per-frame update
///
/// The memory itself (working, long-term and sensory) lives in the inference layer;
/// `XMemMemoryReading` holds the maths it reads with.
public final class XMem: Module {
  /// The channel counts a checkpoint fixes.
  public struct Dimensions: Equatable, Sendable, CustomStringConvertible {
    /// C^k, C^v, C^h (0: no hidden state).
    public var key: Int, value: Int, hidden: Int

    public init(key: Int = 64, value: Int = 512, hidden: Int = 64) {
      self.key = key
      self.value = value
      self.hidden = hidden
    }

    /// Read back from a state dict, as XMem's `init_hyperparameters` does: the key
    /// projection's output, the value fuser's output, a third of the hidden transform's
    /// output (no hidden state when it is absent).
    public init(stateDict: [String: Tensor]) throws {
      func channels(_ name: String) throws -> Int {
        guard let tensor = stateDict[name], tensor.rank == 4 else {
          throw ModelError("XMem weights: '\(name)' is missing or not a convolution weight; is this an XMem checkpoint?")
        }
        return tensor.shape[0]
      }
      key = try channels("key_proj.key_proj.weight")
      value = try channels("value_encoder.fuser.block2.conv2.weight")
      hidden = stateDict["decoder.hidden_update.transform.weight"] == nil ? 0 : try channels("decoder.hidden_update.transform.weight") / 3
    }

    public var description: String { "C^k=\(key), C^v=\(value), C^h=\(hidden)" }
  }

  public let dimensions: Dimensions
  public let keyEncoder: XMemKeyEncoder
  public let valueEncoder: XMemValueEncoder
  public let keyProjection: XMemKeyProjection
  public let decoder: XMemDecoder

  /// XMem with random weights; `singleObject` gives the value encoder no "others" channel.
  public init(dimensions: Dimensions = Dimensions(), singleObject: Bool = false) throws {
    guard dimensions.key > 0, dimensions.value > 0, dimensions.value % 16 == 0, dimensions.hidden >= 0 else {
      throw ModelError("XMem: need positive key and value channels (value a multiple of 16 for CBAM) and hidden ≥ 0, got \(dimensions)")
    }
    self.dimensions = dimensions
    keyEncoder = try XMemKeyEncoder()
    valueEncoder = try XMemValueEncoder(valueChannels: dimensions.value, hiddenChannels: dimensions.hidden, singleObject: singleObject)
    keyProjection = try XMemKeyProjection(inChannels: 1024, keyChannels: dimensions.key)
    decoder = try XMemDecoder(valueChannels: dimensions.value, hiddenChannels: dimensions.hidden)
    super.init()
    registerModule("key_encoder", keyEncoder)
    registerModule("value_encoder", valueEncoder)
    registerModule("key_proj", keyProjection)
    registerModule("decoder", decoder)
  }

  /// XMem built to a state dict's dimensions and loaded from it. A single-object
  /// checkpoint's 4-channel value-encoder `conv1` gets a zero filter for the "others"
  /// channel, as XMem's `load_weights` does. Every missing, unexpected or misshapen key
  /// is reported in one error.
  public convenience init(stateDict: [String: Tensor]) throws {
    try self.init(dimensions: try Dimensions(stateDict: stateDict))
    var entries = stateDict
    let conv1 = "value_encoder.conv1.weight"
    if let weight = entries[conv1], weight.rank == 4, weight.shape[1] == 4 {
      let padding = try Tensor.zeros([weight.shape[0], 1, weight.shape[2], weight.shape[3]], dtype: weight.dtype, device: weight.device)
      entries[conv1] = try Tensor.cat([weight, padding], dim: 1)
    }
    try loadStateDict(entries)
  }

  /// The layout inference computes in (see `optimizeForInference`).
  public private(set) var inferenceForm = InferenceForm()

  /// Evaluation mode, batch norm folded into the convolutions, activations and the
  /// ResNets' residual additions fused into them, and (by default) channels-last weights
  /// and frames (oneDNN's faster layout). Parameters keep their values and names.
  public func optimizeForInference(channelsLast: Bool = true) throws {
    inferenceForm = try InferenceForm.prepare(self, channelsLast: channelsLast, dtype: .float32)
  }

  /// Whether the network keeps a hidden (sensory) state per object.
  public var hasHiddenState: Bool { dimensions.hidden > 0 }

  /// The query side of a frame [B, 3, H, W] (H and W multiples of 16): key, shrinkage
  /// (only for memory frames), selection, and the features at strides 16, 8, 4.
  public func encodeKey(
    _ frame: Tensor, needShrinkage: Bool = true, needSelection: Bool = true
  ) throws -> (key: Tensor, shrinkage: Tensor?, selection: Tensor?, features: (f16: Tensor, f8: Tensor, f4: Tensor)) {
    guard frame.rank == 4, frame.shape[1] == 3, frame.shape[2] % 16 == 0, frame.shape[3] % 16 == 0 else {
      throw ModelError("XMem: frames must be [N, 3, H, W] with H and W multiples of 16, got \(frame.shape)")
    }
    let features = try keyEncoder.forward(try inferenceForm.input(frame))
    let projected = try keyProjection.forward(features.f16, needShrinkage: needShrinkage, needSelection: needSelection)
    return (projected.key, projected.shrinkage, projected.selection, features)
  }

  /// The memory value of each object's mask [B, O, H, W] on `frame`, and the hidden
  /// state, updated when `deepUpdate`.
  public func encodeValue(
    frame: Tensor, f16: Tensor, hidden: Tensor?, masks: Tensor, deepUpdate: Bool = true
  ) throws -> (value: Tensor, hidden: Tensor?) {
    try valueEncoder.forward(frame: try inferenceForm.input(frame), imageFeature: f16, masks: masks, hidden: hidden, deepUpdate: deepUpdate)
  }

  /// Decodes a memory readout [B, O, C^v, h, w] into each object's probability, merged
  /// by soft aggregation: the new hidden state (when `updateHidden`), the merged logits
  /// and probabilities [B, 1 + O, H, W], background first.
  /// `selector` [B, O] (training): 1 for each real object, 0 for the padding objects of
  /// a batch whose clips have fewer, whose probabilities then count as zero.
  public func segment(
    features: (f16: Tensor, f8: Tensor, f4: Tensor), readout: Tensor, hidden: Tensor?, updateHidden: Bool = true,
    selector: Tensor? = nil
  ) throws -> (hidden: Tensor?, logits: Tensor, probabilities: Tensor) {
    let decoded = try decoder.forward(f16: features.f16, f8: features.f8, f4: features.f4, readout: readout, hidden: hidden,
                                      updateHidden: updateHidden)
    var probabilities = try decoded.logits.sigmoid()
    if let selector { probabilities = try probabilities * selector.view([selector.shape[0], selector.shape[1], 1, 1]) }
    let merged = try softAggregate(probabilities, dim: 1)
    return (decoded.hidden, merged.logits, merged.probabilities)
  }

  /// Training's memory reading (XMem's `read_memory`): every memory element, a plain
  /// softmax. Query key and selection [B, C^k, h, w]; memory keys [B, C^k, T, h, w],
  /// shrinkage [B, 1, T, h, w], values [B, O, C^v, T, h, w]. Returns [B, O, C^v, h, w].
  public func readMemory(queryKey: Tensor, selection: Tensor?, memoryKey: Tensor, shrinkage: Tensor?, values: Tensor) throws -> Tensor {
    let (batch, objects, channels) = (values.shape[0], values.shape[1], values.shape[2])
    let (h, w) = (queryKey.shape[2], queryKey.shape[3])
    let similarity = try XMemMemoryReading.similarity(
      memoryKey: memoryKey.flatten(startDim: 2), shrinkage: try shrinkage?.flatten(startDim: 2), queryKey: queryKey.flatten(startDim: 2),
      selection: try selection?.flatten(startDim: 2))
    let affinity = try XMemMemoryReading.softmax(similarity, topK: nil).dense()
    let memory = try values.reshape([batch, objects * channels, -1]).matmul(affinity)
    return try memory.view([batch, objects, channels, h, w])
  }
}
