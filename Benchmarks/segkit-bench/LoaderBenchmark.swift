// The data loader's side of `Benchmarks/run.sh loader`: decode, DeepLab's scale/crop/flip,
// colour jitter, normalisation and batching on N workers, against torchvision's DataLoader
// with the same transforms (Benchmarks/python/loader.py).
import Foundation
import SegKitData

/// A folder dataset of `count` 500×375 JPEGs (VOC's typical size) with palette masks, made once
/// and shared with the Python side (same path: $TMPDIR/segkit-loader-bench-COUNT).
func loaderFixture(count: Int) throws -> URL {
  let root = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("segkit-loader-bench-\(count)")
  let done = root.appendingPathComponent("complete")
  if FileManager.default.fileExists(atPath: done.path) { return root }
  for folder in ["images", "masks"] {
    try FileManager.default.createDirectory(at: root.appendingPathComponent(folder), withIntermediateDirectories: true)
  }
  let (w, h) = (500, 375)
  for index in 0..<count {
    var random = SeededRandom(seed: UInt64(index))
    var image = Image(width: w, height: h, channels: 3)
    var mask = Image(width: w, height: h, channels: 1)
    let (cx, cy, r) = (random.below(w), random.below(h), 40 + random.below(120))
    let cls = UInt8(1 + random.below(20))
    for y in 0..<h {
      for x in 0..<w {
        let inside = (x - cx) * (x - cx) + (y - cy) * (y - cy) < r * r
        let noise = random.below(24)
        image[x, y, 0] = UInt8((x * 255 / w + noise + (inside ? 90 : 0)) % 256)
        image[x, y, 1] = UInt8((y * 255 / h + noise) % 256)
        image[x, y, 2] = UInt8(((x + y) / 4 + noise + Int(cls) * 9) % 256)
        mask[x, y, 0] = inside ? cls : 0
      }
    }
    let name = String(format: "%05d", index)
    try ImageIO.writeJPEG(image, to: root.appendingPathComponent("images/\(name).jpg"), quality: 90)
    try ImageIO.writePNG(mask, to: root.appendingPathComponent("masks/\(name).png"), palette: .pascal)
  }
  try Data().write(to: done)
  return root
}

/// One warm-up epoch, then the median of `epochs` timed epochs.
func loaderBenchmark(workers: Int, images: Int, batch: Int, crop: Int, epochs: Int = 3) throws {
  let dataset = try SegmentationDataset.folder(root: try loaderFixture(count: images))
  var augmentation = Augmentation.deeplab(crop: crop, minScale: 0.5, maxScale: 2.0, step: 0.25)
  (augmentation.brightness, augmentation.contrast, augmentation.saturation, augmentation.hue) = (0.3, 0.3, 0.3, 0.1)
  let loader = try DataLoader(
    source: dataset, augmentation: augmentation,
    options: LoaderOptions(batchSize: batch, seed: 0, dropLast: true, workers: workers, prefetch: 2 * max(1, workers)))
  var times: [Double] = []
  for epoch in 0...epochs {
    let iterator = loader.batches(epoch: epoch)
    let time = try seconds { while try iterator.next() != nil {} }
    if epoch > 0 { times.append(time) }
  }
  let epoch = times.sorted()[times.count / 2]
  let samples = Double(loader.stepsPerEpoch * batch)
  let report = ["ms_per_image": epoch / samples * 1e3, "ms_per_batch": epoch / Double(loader.stepsPerEpoch) * 1e3]
  let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
  print(String(decoding: json, as: UTF8.self))
}
