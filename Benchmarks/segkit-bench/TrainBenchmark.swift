// The training side of `Benchmarks/run.sh train`: `segkit train`'s own path (the semantic
// task in the one training loop: loader with DeepLab's scale/crop/flip on workers,
// forward, label check, cross-entropy on the main and auxiliary heads, backward, SGD with
// momentum and weight decay, poly schedule; no run folder), against the same loop in
// PyTorch with its DataLoader (Benchmarks/python/train.py), on the loader benchmark's images.
import Foundation
import SegKitTraining

/// `warmup` untimed steps, then `steps` timed ones: images per second and peak memory.
func trainBenchmark(model name: String, batch: Int, crop: Int, steps: Int, workers: Int, warmup: Int = 1) throws {
  // As `segkit train` does, unless SEGKIT_BENCH_PLAIN=1.
  if ProcessInfo.processInfo.environment["SEGKIT_BENCH_PLAIN"] != "1" { Torch.keepFreedMemory() }
  var config = TrainingConfig()
  try config.apply(yaml: """
    dataset: folder
    dataset_dir: \(try loaderFixture(count: 40).path)
    train_split: all
    val_split: ""
    num_classes: 21
    model: \(name)
    train_crop_size: [\(crop), \(crop)]
    train_batch_size: \(batch)
    min_scale_factor: 0.5
    max_scale_factor: 2.0
    scale_factor_step_size: 0.25
    base_learning_rate: 0.01
    momentum: 0.9
    weight_decay: 0.0001
    training_number_of_steps: \(warmup + steps)
    workers: \(workers)
    log_interval: 1000000
    seed: 0
    """)
  try config.validate()
  let trainer = try Trainer(config: config)
  _ = try trainer.train(stopAfterSteps: warmup)
  let start = DispatchTime.now().uptimeNanoseconds
  _ = try trainer.train(stopAfterSteps: steps)
  let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
  let report = ["images_per_second": Double(steps * batch) / seconds, "ms_per_image": seconds / Double(steps * batch) * 1e3,
                "peak_mib": peakMemoryMiB()]
  let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
  print(String(decoding: json, as: UTF8.self))
}
