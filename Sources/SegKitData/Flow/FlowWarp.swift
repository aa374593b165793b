import SegKitTensor

/// Backward warping: out(x) = input(x + F(x)), bilinear, zero outside the image (or,
/// with `.border` padding, the nearest border value, as DVSNet's warp clamps).
///
/// Direction matters. To carry frame t−1's mask (or logits) to frame t, warp it with
/// the flow from t to t−1: each pixel x of frame t looks up where its content was in
/// frame t−1. Warping with the flow from t−1 to t moves the mask the wrong way (the
/// mistake tfvos made).
public enum FlowWarp {
  /// `input` [C, H, W] or [N, C, H, W], `flow` [2, H, W] or [N, 2, H, W] of the same
  /// height and width; float input, result of the input's shape.
  public static func warp(_ input: Tensor, by flow: Tensor, padding: GridPadding = .zeros) throws -> Tensor {
    let batched = input.rank == 4
    let x = batched ? input : try input.unsqueeze(0)
    let f = flow.rank == 4 ? flow : try flow.unsqueeze(0)
    guard x.rank == 4, f.rank == 4, f.shape[1] == 2, f.shape[2] == x.shape[2], f.shape[3] == x.shape[3],
      f.shape[0] == x.shape[0] || f.shape[0] == 1
    else {
      throw DataError("warping needs an [N, C, H, W] input and an [N, 2, H, W] flow of its size, got \(input.shape) and \(flow.shape)")
    }
    let (height, width) = (x.shape[2], x.shape[3])
    // Pixel centres x + F(x), then grid_sample's [-1, 1] without corner alignment: (2p + 1) / size − 1.
    let xs = try Tensor.arange(0, Double(width), dtype: .float32, device: x.device).reshape([1, 1, width])
    let ys = try Tensor.arange(0, Double(height), dtype: .float32, device: x.device).reshape([1, height, 1])
    let flowX = try f.select(dim: 1, index: 0).to(.float32), flowY = try f.select(dim: 1, index: 1).to(.float32)
    let gridX = try ((flowX + xs) * 2 + 1) / Double(width) - 1
    let gridY = try ((flowY + ys) * 2 + 1) / Double(height) - 1
    var grid = try Tensor.stack([gridX, gridY], dim: 3)
    if grid.shape[0] != x.shape[0] { grid = try grid.expand([x.shape[0], height, width, 2]) }
    let warped = try x.to(.float32).gridSample(grid: grid, mode: .bilinear, padding: padding, alignCorners: false)
    return batched ? warped : try warped.squeeze(dim: 0)
  }

  /// A mask of object ids carried along `flow`: each object's indicator is warped
  /// bilinearly and kept where it is above ½ (the largest wins); the rest is 0.
  public static func warp(mask: Image, by flow: FlowField) throws -> Image {
    guard mask.channels == 1 else { throw DataError("a mask has one channel, this one \(mask.channels)") }
    try requireSameSize(mask, flow)
    let ids = Set(mask.pixels).subtracting([0]).sorted()
    guard !ids.isEmpty else { return mask }
    let labels = try Tensor(mask.pixels.map { Int64($0) }, shape: [1, mask.height, mask.width])
    let indicators = try Tensor.cat(try ids.map { try (labels .== Double($0)).to(.float32) }, dim: 0)  // [K, H, W]
    let warped = try warp(indicators, by: try flow.tensor())
    let (best, index) = try (warped.max(dim: 0).values, warped.argmax(dim: 0))
    let idValues = try Tensor(ids.map { Float($0) }, shape: [ids.count])
    let out = try idValues.indexSelect(dim: 0, index: index.reshape([-1])).reshape(index.shape) * (best .> 0.5).to(.float32)
    return try Image(tensor: out.unsqueeze(0) / 255)
  }

  /// An image carried along `flow` (bilinear, black outside).
  public static func warp(image: Image, by flow: FlowField) throws -> Image {
    try requireSameSize(image, flow)
    let warped = try warp(try image.tensor(), by: try flow.tensor())
    return try Image(tensor: warped)
  }

  static func requireSameSize(_ image: Image, _ flow: FlowField) throws {
    guard image.width == flow.width, image.height == flow.height else {
      throw DataError("the flow is \(flow.width)×\(flow.height), the image \(image.width)×\(image.height): they must be the same size")
    }
  }
}
