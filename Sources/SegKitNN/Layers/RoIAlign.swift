import SegKitTensor

/// RoI-align (Mask R-CNN) as torchvision.ops.roi_align computes it with a fixed
/// `samplingRatio`: each of the `outputSize` bins of a box averages samplingRatio²
/// bilinear samples at evenly spaced points; a sample more than one pixel outside the
/// map is 0, one nearer is read at the clamped position. `aligned` shifts box
/// corners by half a pixel (pixel centres at integer + ½), as torchvision's `aligned=True`.
///
/// - Parameters:
///   - input: [N, C, H, W] features.
///   - boxes: [K, 4] boxes (x1, y1, x2, y2) in input-image pixels, scaled by `spatialScale`.
///   - batchIndices: the image of each box (all 0 when nil).
/// - Returns: [K, C, outputSize.height, outputSize.width].
public func roiAlign(
  _ input: Tensor, boxes: Tensor, batchIndices: [Int]? = nil, outputSize: Size2, spatialScale: Double,
  samplingRatio: Int = 2, aligned: Bool = true
) throws -> Tensor {
  guard input.rank == 4, boxes.rank == 2, boxes.shape[1] == 4 else {
    throw NNError("roiAlign takes [N, C, H, W] features and [K, 4] boxes, got \(input.shape) and \(boxes.shape)")
  }
  let count = boxes.shape[0]
  let indices = batchIndices ?? [Int](repeating: 0, count: count)
  guard indices.count == count, indices.allSatisfy({ (0..<input.shape[0]).contains($0) }), samplingRatio >= 1 else {
    throw NNError("roiAlign: \(indices.count) batch indices for \(count) boxes (each in 0..<\(input.shape[0])), sampling ratio \(samplingRatio)")
  }
  let (height, width) = (input.shape[2], input.shape[3])
  let (binsY, binsX) = (outputSize.height, outputSize.width)
  let offset = aligned ? 0.5 : 0
  let scaled = try boxes.to(.float32).to(input.device) * spatialScale - offset
  let (x1, y1) = (try scaled.narrow(dim: 1, start: 0, length: 1), try scaled.narrow(dim: 1, start: 1, length: 1))
  var (boxWidth, boxHeight) = (try scaled.narrow(dim: 1, start: 2, length: 1) - x1, try scaled.narrow(dim: 1, start: 3, length: 1) - y1)
  if !aligned { (boxWidth, boxHeight) = (try boxWidth.clamp(min: 1), try boxHeight.clamp(min: 1)) }
  // Sample j of a row sits at start + (j + ½) · size / (bins · ratio): bin b's sample s is j = b · ratio + s.
  func positions(_ start: Tensor, _ size: Tensor, _ bins: Int) throws -> Tensor {
    let steps = try Tensor.arange(0, Double(bins * samplingRatio), dtype: .float32, device: input.device) + 0.5
    return try start + size / Double(bins * samplingRatio) * steps.unsqueeze(0)  // [K, bins · ratio]
  }
  let ys = try positions(y1, boxHeight, binsY), xs = try positions(x1, boxWidth, binsX)
  // grid_sample with border padding clamps to the map as torchvision does; (2p + 1) / size − 1 places pixel p.
  let gridY = try ((ys * 2 + 1) / Double(height) - 1).unsqueeze(2).expand([count, binsY * samplingRatio, binsX * samplingRatio])
  let gridX = try ((xs * 2 + 1) / Double(width) - 1).unsqueeze(1).expand([count, binsY * samplingRatio, binsX * samplingRatio])
  let grid = try Tensor.stack([gridX, gridY], dim: 3)
  let index = try Tensor(indices.map { Int64($0) }, shape: [count]).to(input.device)
  let sampled = try input.indexSelect(dim: 0, index: index).gridSample(grid: grid, mode: .bilinear, padding: .border, alignCorners: false)
  let insideY = try ((ys .>= -1) .& (ys .<= Double(height))).to(input.dtype).unsqueeze(2)
  let insideX = try ((xs .>= -1) .& (xs .<= Double(width))).to(input.dtype).unsqueeze(1)
  let kept = try sampled * (insideY * insideX).unsqueeze(1)
  return try kept.avgPool2d(kernel: Size2(samplingRatio), stride: Size2(samplingRatio))
}
