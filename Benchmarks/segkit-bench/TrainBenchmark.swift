// The training loop's side of `Benchmarks/run.sh train`: what `segkit train` does per step
// (loader with DeepLab's scale/crop/flip on workers, forward, cross-entropy on the main and
// auxiliary heads, backward, SGD with momentum and weight decay), against the same loop in
// PyTorch with its DataLoader (Benchmarks/python/train.py), on the loader benchmark's images.
import Foundation
import SegKitData
import SegKitModels

/// `warmup` untimed steps, then `steps` timed ones: images per second and peak memory.
func trainBenchmark(model name: String, batch: Int, crop: Int, steps: Int, workers: Int, warmup: Int = 1) throws {
  // As `segkit train` does, unless SEGKIT_BENCH_PLAIN=1.
  if ProcessInfo.processInfo.environment["SEGKIT_BENCH_PLAIN"] != "1" { Torch.keepFreedMemory() }
  let dataset = try SegmentationDataset.folder(root: try loaderFixture(count: 40))
  let loader = try DataLoader(
    source: dataset, augmentation: Augmentation.deeplab(crop: crop, minScale: 0.5, maxScale: 2.0, step: 0.25),
    options: LoaderOptions(batchSize: batch, seed: 0, dropLast: true, workers: workers, prefetch: 2 * max(1, workers)))
  Torch.manualSeed(0)
  let model = try ModelZoo.make(name, classes: 21)
  model.train()
  let optimizer = try SGD(model.parameterGroups(), momentum: 0.9, weightDecay: 1e-4)
  let batches = loader.batches(from: .start, count: warmup + steps)
  var start = DispatchTime.now().uptimeNanoseconds
  for step in 0..<(warmup + steps) {
    if step == warmup { start = DispatchTime.now().uptimeNanoseconds }
    guard let batch = try batches.next(), let labels = batch.labels else { throw DataError("the loader ended early") }
    let output = try model(batch.images)
    var loss = try softmaxCrossEntropy(logits: output.out, labels: labels)
    if let aux = output.aux {
      loss = try lossWithAuxiliary(main: loss, auxiliary: [try softmaxCrossEntropy(logits: aux, labels: labels)], weight: 0.4)
    }
    _ = try loss.item()  // the trainer reads every loss
    try loss.backward()
    try optimizer.step(learningRate: 0.01)
    try optimizer.zeroGrad()
  }
  let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
  let report = ["images_per_second": Double(steps * batch) / seconds, "ms_per_image": seconds / Double(steps * batch) * 1e3,
                "peak_mib": peakMemoryMiB()]
  let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
  print(String(decoding: json, as: UTF8.self))
}
