import SegKitNN

extension InputNormalization {
  /// The first convolution `weight` [out, in, kh, kw] (and `bias`) of a network trained
  /// on inputs normalised as `trainedFor`, refitted to read inputs normalised as `self`
  /// and give the same output: the channels are reordered, each filter is scaled and
  /// the bias absorbs the difference of the means. Input channels past the first three
  /// are dropped (they are not the image's; the caller supplies them).
  ///
  /// With raw pixel p of RGB channel c, the trained network reads
  /// a_c = (p/d_a − μa_c)/σa_c, this one reads b_k = (p/d_b − μb_k)/σb_k for its own
  /// channel k of c, so a_c = s_k·b_k + t_k with s_k = d_b·σb_k/(d_a·σa_c) and
  /// t_k = (d_b·μb_k/d_a − μa_c)/σa_c: W′_k = s_k·W_c and b′ = b + Σ_k t_k·ΣW_c.
  /// For torchvision's VGG16 into Caffe's BGR input that is W′ = W/(255σ) and
  /// b′ = b − Σ W·μ/σ + Σ W′·μ_caffe. Only the zero padding differs: it stands for
  /// the mean pixel of each normalisation, so the outputs on the border of the
  /// convolution move by the filters' response to the difference of the two means.
  public func refit(weight: Tensor, bias: Tensor?, trainedFor source: InputNormalization) throws
    -> (weight: Tensor, bias: Tensor?)
  {
    let shape = weight.shape
    guard shape.count == 4, shape[1] >= 3, mean.count == 3, std.count == 3, source.mean.count == 3, source.std.count == 3
    else {
      throw ModelError("cannot refit a first convolution of shape \(shape) between 3-channel input normalisations")
    }
    let outputs = shape[0], channels = shape[1], taps = shape[2] * shape[3]
    let w = try weight.to(.float64).toArray(Double.self)
    var refitted = [Double](repeating: 0, count: outputs * 3 * taps)
    var shift = [Double](repeating: 0, count: outputs)
    for k in 0..<3 {
      let rgb = channelOrder == .bgr ? 2 - k : k
      let c = source.channelOrder == .bgr ? 2 - rgb : rgb
      let scale = Double(pixelDivisor) * Double(std[k]) / (Double(source.pixelDivisor) * Double(source.std[c]))
      let offset = (Double(pixelDivisor) * Double(mean[k]) / Double(source.pixelDivisor) - Double(source.mean[c]))
        / Double(source.std[c])
      for o in 0..<outputs {
        for tap in 0..<taps {
          let value = w[(o * channels + c) * taps + tap]
          refitted[(o * 3 + k) * taps + tap] = scale * value
          shift[o] += offset * value
        }
      }
    }
    let newWeight = try Tensor(refitted, shape: [outputs, 3] + shape[2...]).to(weight.dtype)
    guard let bias else { return (newWeight, nil) }
    let b = try bias.to(.float64).toArray(Double.self)
    guard b.count == outputs else { throw ModelError("a bias of \(b.count) values for \(outputs) filters") }
    return (newWeight, try Tensor(zip(b, shift).map { $0 + $1 }, shape: [outputs]).to(bias.dtype))
  }
}
