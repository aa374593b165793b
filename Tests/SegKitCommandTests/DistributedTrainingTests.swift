import Foundation
import SegKitInference
import SegKitTensor
import SegKitTestSupport
import SegKitTraining
import XCTest

/// Data-parallel `segkit train` on this machine's CPU (Gloo): N processes × batch b
/// take the steps of 1 process × batch N·b (void pixels included), also across an
/// interrupted and resumed run; lost, late or blocked peers end the run with a message.
final class DistributedTrainingTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws {
    root = try Oracle.temporaryDirectory("segkit-distributed")
    try SlowTest.skipInFastTier()
  }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  /// Synthetic VOC-layout data (objects with void edges) and a config; batch norm is
  /// frozen (fine_tune_batch_norm false), so only the data split differs between setups.
  func fixture(steps: Int) throws -> URL {
    let dataset = root.appendingPathComponent("data")
    if !FileManager.default.fileExists(atPath: dataset.path) {
      let synth = try SegKitCommand.run(["data", "synth", "--kind", "semantic", "--out", dataset.path, "--train", "8", "--val", "0",
                                         "--image-size", "64", "--seed", "3"])
      XCTAssertEqual(synth.status, 0, synth.error)
    }
    let config = root.appendingPathComponent("config-\(steps).yaml")
    try """
      dataset: pascal_voc
      dataset_dir: \(dataset.path)
      val_split: ""
      model: fcn32s_resnet18
      train_crop_size: [64, 64]
      train_batch_size: 2
      training_number_of_steps: \(steps)
      fine_tune_batch_norm: false
      base_learning_rate: 0.01
      log_interval: 1
      checkpoint_interval: 1000
      workers: 0
      threads: 1
      """.write(to: config, atomically: true, encoding: .utf8)
    return config
  }

  /// The largest difference between two runs' final weights, relative to each tensor's largest value.
  func largestRelativeDifference(_ a: URL, _ b: URL) throws -> Double {
    let first = try StateDict.load(contentsOf: a.appendingPathComponent("model.safetensors"))
    let second = try StateDict.load(contentsOf: b.appendingPathComponent("model.safetensors"))
    var worst = 0.0
    for (name, x) in first where x.dtype.isFloatingPoint {
      let y = try XCTUnwrap(second[name], name)
      let scale = max(try x.abs().max().item(), 1e-12)
      worst = max(worst, try (x - y).abs().max().item() / scale)
    }
    return worst
  }

  func waitForLog(_ run: URL, containing text: String, seconds: Double = 120) {
    let log = run.appendingPathComponent("train.log")
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline && !((try? String(contentsOf: log, encoding: .utf8))?.contains(text) ?? false) {
      Thread.sleep(forTimeInterval: 0.05)
    }
  }

  func testTwoProcessesTakeTheStepsOfOneWithTheGlobalBatch() throws {
    let config = try fixture(steps: 3)
    let single = root.appendingPathComponent("single"), pair = root.appendingPathComponent("pair")
    let one = try SegKitCommand.run(["train", "--config", config.path, "--run", single.path, "--plain",
                                     "--set", "train_batch_size=4", "--set", "threads=2"])
    XCTAssertEqual(one.status, 0, one.error)
    let port = try Oracle.freePort()
    let two = try SegKitCommand.run(["train", "--config", config.path, "--run", pair.path, "--plain", "--nproc-per-node", "2",
                                     "--master-port", String(port)])
    XCTAssertEqual(two.status, 0, two.error)
    XCTAssertLessThan(try largestRelativeDifference(single, pair), 1e-5)
    // The log and the stored config state the global batch; only rank 0 wrote.
    XCTAssertTrue(two.output.contains("data parallel: 2 processes × train_batch_size 2 = global batch 4"), two.output)
    XCTAssertEqual(two.output.components(separatedBy: "run folder:").count, 2, two.output)
    XCTAssertTrue(try String(contentsOf: pair.appendingPathComponent("config.yaml"), encoding: .utf8).contains("global batch 4"))
    // Logged losses are the global batch's: the same numbers as the single process's.
    let losses = { (text: String) in text.split(separator: "\n").filter { $0.hasPrefix("step ") }.map { $0.split(separator: " ")[3] } }
    XCTAssertEqual(losses(two.output), losses(one.output))
  }

  /// With gradient accumulation the exchange runs during the last batch's backward
  /// pass, after the average over the batches: two processes × batch 1 × 2 batches
  /// take the steps of one process × batch 2 × 2 batches.
  func testGradientAccumulationAcrossProcessesEqualsOneProcess() throws {
    let config = try fixture(steps: 2)
    let single = root.appendingPathComponent("single-accumulated"), pair = root.appendingPathComponent("pair-accumulated")
    let one = try SegKitCommand.run(["train", "--config", config.path, "--run", single.path, "--plain", "--set", "threads=2",
                                     "--set", "train_batch_size=2", "--set", "gradient_accumulation=2"])
    XCTAssertEqual(one.status, 0, one.error)
    let two = try SegKitCommand.run(["train", "--config", config.path, "--run", pair.path, "--plain", "--nproc-per-node", "2",
                                     "--master-port", String(try Oracle.freePort()), "--set", "train_batch_size=1",
                                     "--set", "gradient_accumulation=2"])
    XCTAssertEqual(two.status, 0, two.error)
    XCTAssertLessThan(try largestRelativeDifference(single, pair), 1e-5)
  }

  /// Batch norm in training mode: with sync_batch_norm two processes × batch 2 take
  /// the first step of one process × batch 4 that normalises with the same arithmetic
  /// (synchronised batch norm on a world of one); without it they do not.
  ///
  /// Against libtorch's own batch norm the comparison is not this tight in float32:
  /// at this seed the first step's gradients differ by 2e-3 from layer2.0 down (on a
  /// world of one as on two), at other seeds by 3e-6. The formula is libtorch's: in
  /// float64 the whole network's gradients agree to 1e-12
  /// (SynchronizedBatchNormNetworkTests); in float32 these small batch-norm batches
  /// make some steps that sensitive to rounding.
  func testSynchronizedBatchNormMatchesOneProcess() throws {
    let config = try fixture(steps: 1)
    let trainBN = ["--set", "fine_tune_batch_norm=true", "--set", "sync_batch_norm=true"]
    let single = root.appendingPathComponent("single"), synced = root.appendingPathComponent("synced")
    let unsynced = root.appendingPathComponent("unsynced")
    let one = try SegKitCommand.run(["train", "--config", config.path, "--run", single.path, "--plain",
                                     "--set", "train_batch_size=4", "--set", "threads=2"] + trainBN,
                                    environment: ["WORLD_SIZE": "1", "RANK": "0", "MASTER_PORT": String(try Oracle.freePort())])
    XCTAssertEqual(one.status, 0, one.error)
    for (run, sync) in [(synced, "true"), (unsynced, "false")] {
      let two = try SegKitCommand.run(["train", "--config", config.path, "--run", run.path, "--plain", "--nproc-per-node", "2",
                                       "--master-port", String(try Oracle.freePort())] + trainBN + ["--set", "sync_batch_norm=\(sync)"])
      XCTAssertEqual(two.status, 0, two.error)
    }
    let reference = try firstGradient(single)
    let norm = try reference.norm().item()
    XCTAssertLessThan(try (try firstGradient(synced) - reference).norm().item() / norm, 1e-5)
    XCTAssertGreaterThan(try (try firstGradient(unsynced) - reference).norm().item() / norm, 1e-2)
  }

  /// The audit's case: unet_resnet18, 64×64 crops with void labels, batch norm trained,
  /// four SGD steps. In float64 (the `float64` setting, the same command path) two
  /// processes × batch 2 with synchronised batch norm end where one process × batch 4
  /// with libtorch's own batch norm does, to rounding. In float32 the same run is
  /// chaotic at rounding level (README, "Several processes and machines"): one process
  /// against itself with 1 and 2 threads ends 6e-2 apart, so 1e-4 is not a float32 bound.
  func testSynchronizedBatchNormIsExactInFloat64() throws {
    let config = try fixture(steps: 4)
    let common = ["--set", "model=unet_resnet18", "--set", "fine_tune_batch_norm=true", "--set", "sync_batch_norm=true",
                  "--set", "float64=true"]
    let single = root.appendingPathComponent("single64"), pair = root.appendingPathComponent("pair64")
    let one = try SegKitCommand.run(["train", "--config", config.path, "--run", single.path, "--plain",
                                     "--set", "train_batch_size=4", "--set", "threads=2"] + common)
    XCTAssertEqual(one.status, 0, one.error)
    let two = try SegKitCommand.run(["train", "--config", config.path, "--run", pair.path, "--plain", "--nproc-per-node", "2",
                                     "--master-port", String(try Oracle.freePort())] + common)
    XCTAssertEqual(two.status, 0, two.error)
    let weights = try StateDict.load(contentsOf: single.appendingPathComponent("model.safetensors"))
    XCTAssertEqual(weights["backbone.bn1.bias"]?.dtype, .float64)
    XCTAssertLessThan(try largestRelativeDifference(single, pair), 1e-10)
  }

  /// Every parameter's gradient of a run's first step, flattened: SGD's momentum
  /// buffers in its step-1 checkpoint.
  func firstGradient(_ run: URL) throws -> Tensor {
    let state = try StateDict.load(contentsOf: run.appendingPathComponent("checkpoints/step-000001.safetensors"))
    let buffers = state.filter { $0.name.hasSuffix(".momentum_buffer") }.sorted { $0.name < $1.name }
    XCTAssertFalse(buffers.isEmpty)
    return try Tensor.cat(try buffers.map { try $0.tensor.to(.float64).reshape([-1]) })
  }

  /// Two "machines": ranks in two network namespaces joined by a veth pair, each
  /// started with torchrun's variables (and GLOO_SOCKET_IFNAME, as with PyTorch, since
  /// the host name resolves to loopback there), meeting at rank 0's address.
  func testTwoMachinesJoinedByANetwork() throws {
    let tag = String(ProcessInfo.processInfo.processIdentifier % 100_000)
    let (first, second) = ("segkitA\(tag)", "segkitB\(tag)")
    let (linkA, linkB) = ("skva\(tag)", "skvb\(tag)")
    guard Self.ip(["netns", "add", first]) else { throw XCTSkip("network namespaces are refused here (ip netns add needs root and a kernel that allows them)") }
    defer { _ = Self.ip(["netns", "del", first]) }
    XCTAssertTrue(Self.ip(["netns", "add", second]))
    defer { _ = Self.ip(["netns", "del", second]) }
    for command in [["link", "add", linkA, "type", "veth", "peer", "name", linkB], ["link", "set", linkA, "netns", first],
                    ["link", "set", linkB, "netns", second], ["-n", first, "addr", "add", "10.213.7.1/24", "dev", linkA],
                    ["-n", second, "addr", "add", "10.213.7.2/24", "dev", linkB], ["-n", first, "link", "set", linkA, "up"],
                    ["-n", second, "link", "set", linkB, "up"], ["-n", first, "link", "set", "lo", "up"],
                    ["-n", second, "link", "set", "lo", "up"]] {
      guard Self.ip(command) else { throw XCTSkip("the kernel refused `ip \(command.joined(separator: " "))`") }
    }
    let config = try fixture(steps: 3)
    let single = root.appendingPathComponent("single"), pair = root.appendingPathComponent("pair")
    let one = try SegKitCommand.run(["train", "--config", config.path, "--run", single.path, "--plain",
                                     "--set", "train_batch_size=4", "--set", "threads=2"])
    XCTAssertEqual(one.status, 0, one.error)
    let segkit = try SegKitCommand.executable().path
    let workers = try [(first, linkA, 0), (second, linkB, 1)].map { namespace, link, rank in
      try SegKitCommand.start(["netns", "exec", namespace, "env", "GLOO_SOCKET_IFNAME=\(link)", "RANK=\(rank)", "WORLD_SIZE=2",
                 "MASTER_ADDR=10.213.7.1", "MASTER_PORT=29500", segkit, "train", "--config", config.path, "--run", pair.path,
                 "--plain", "--dist-timeout", "60"], executable: URL(fileURLWithPath: "/usr/sbin/ip"))
    }
    for worker in workers { worker.waitUntilExit() }
    XCTAssertEqual(workers.map(\.terminationStatus), [0, 0])
    XCTAssertLessThan(try largestRelativeDifference(single, pair), 1e-5)
  }

  static func ip(_ arguments: [String]) -> Bool {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
    process.arguments = arguments
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    guard (try? process.run()) != nil else { return false }
    process.waitUntilExit()
    return process.terminationStatus == 0
  }

  /// Ctrl-C on the launcher: every rank stops at the same step and rank 0 checkpoints;
  /// resumed with two processes the run ends with the weights of an uninterrupted one.
  /// (Against one process the weights drift apart by float rounding over 40 steps at
  /// this learning rate, about 1e-4 relative in the smallest batch-norm biases.)
  func testInterruptedAndResumedRunEqualsAnUninterruptedOne() throws {
    let config = try fixture(steps: 40)
    let uninterrupted = root.appendingPathComponent("uninterrupted")
    let whole = try SegKitCommand.run(["train", "--config", config.path, "--run", uninterrupted.path, "--plain",
                                       "--nproc-per-node", "2", "--master-port", String(try Oracle.freePort())])
    XCTAssertEqual(whole.status, 0, whole.error)

    let pair = root.appendingPathComponent("pair")
    let port = try Oracle.freePort()
    let output = Pipe()
    let launcher = try SegKitCommand.start(["train", "--config", config.path, "--run", pair.path, "--plain", "--nproc-per-node", "2",
                              "--master-port", String(port)], output: output)
    waitForLog(pair, containing: "step 2/")
    kill(launcher.processIdentifier, SIGINT)
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    launcher.waitUntilExit()
    XCTAssertEqual(launcher.terminationStatus, 130, text)
    let saved = CheckpointStore(directory: pair.appendingPathComponent("checkpoints")).saved()
    XCTAssertEqual(saved.count, 1, text)
    XCTAssertLessThan(saved.first?.step ?? 40, 40, "stopped before the end")

    let otherWorld = try SegKitCommand.run(["train", "--resume", pair.path, "--plain"])
    XCTAssertNotEqual(otherWorld.status, 0)
    XCTAssertTrue(otherWorld.error.contains("written by 2 process(es), this run has 1"), otherWorld.error)
    let resumed = try SegKitCommand.run(["train", "--resume", pair.path, "--plain", "--nproc-per-node", "2",
                                         "--master-port", String(try Oracle.freePort())])
    XCTAssertEqual(resumed.status, 0, resumed.error)
    XCTAssertLessThan(try largestRelativeDifference(uninterrupted, pair), 1e-6)
  }

  /// A worker killed mid-run: the launcher stops the other and names the lost rank.
  /// Without the launcher (torchrun-style), the surviving rank fails on its own.
  func testALostRankEndsTheRun() throws {
    let config = try fixture(steps: 100_000)
    let run = root.appendingPathComponent("lost")
    let errors = Pipe()
    let launcher = try SegKitCommand.start(["train", "--config", config.path, "--run", run.path, "--plain", "--nproc-per-node", "2",
                              "--master-port", String(try Oracle.freePort())], error: errors)
    waitForLog(run, containing: "step 2/")
    let rankOne = try XCTUnwrap(Self.children(of: launcher.processIdentifier).first { Self.environment(of: $0)["RANK"] == "1" })
    let killed = Date()
    kill(rankOne, SIGKILL)
    let text = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    launcher.waitUntilExit()
    XCTAssertEqual(launcher.terminationStatus, 1, text)
    XCTAssertTrue(text.contains("rank 1 was killed by signal 9; the other workers were stopped"), text)
    XCTAssertLessThan(Date().timeIntervalSince(killed), 60)

    let port = String(try Oracle.freePort())
    let bare = root.appendingPathComponent("bare")
    let survivorErrors = Pipe()
    let environment = ["WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": port]
    let arguments = ["train", "--config", config.path, "--run", bare.path, "--plain", "--dist-timeout", "20"]
    let survivor = try SegKitCommand.start(arguments, environment: environment.merging(["RANK": "0"]) { $1 }, error: survivorErrors)
    let victim = try SegKitCommand.start(arguments, environment: environment.merging(["RANK": "1"]) { $1 })
    waitForLog(bare, containing: "step 2/")
    kill(victim.processIdentifier, SIGKILL)
    let message = String(decoding: survivorErrors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    survivor.waitUntilExit()
    XCTAssertNotEqual(survivor.terminationStatus, 0, message)
    XCTAssertTrue(message.contains("rank 0 of 2"), message)
  }

  /// A peer that never comes, a port already taken, a run folder not named.
  func testJoiningProblemsAreClearErrors() throws {
    let config = try fixture(steps: 2)
    let alone = try SegKitCommand.run(
      ["train", "--config", config.path, "--run", root.appendingPathComponent("alone").path, "--dist-timeout", "2"],
      environment: ["WORLD_SIZE": "2", "RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": String(try Oracle.freePort())])
    XCTAssertNotEqual(alone.status, 0)
    XCTAssertTrue(alone.error.contains("rank 0 of 2 could not join the group"), alone.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: root.appendingPathComponent("alone").path), "nothing written")

    let taken = try ListeningSocket()
    let busy = try SegKitCommand.run(["train", "--config", config.path, "--run", root.appendingPathComponent("busy").path,
                                      "--nproc-per-node", "2", "--master-port", String(taken.port)])
    XCTAssertNotEqual(busy.status, 0)
    XCTAssertTrue(busy.error.contains("--master-port \(taken.port): Address already in use"), busy.error)

    let unnamed = try SegKitCommand.run(["train", "--config", config.path],
                                        environment: ["WORLD_SIZE": "1", "RANK": "0", "MASTER_PORT": String(try Oracle.freePort())])
    XCTAssertNotEqual(unnamed.status, 0)
    XCTAssertTrue(unnamed.error.contains("needs --run DIR"), unnamed.error)
    let badRank = try SegKitCommand.run(["train", "--config", config.path], environment: ["WORLD_SIZE": "2", "RANK": "two"])
    XCTAssertTrue(badRank.error.contains("RANK='two' is not an integer"), badRank.error)
    let hugeWorld = try SegKitCommand.run(["train", "--config", config.path], environment: ["WORLD_SIZE": "9999999999999", "RANK": "0"])
    XCTAssertNotEqual(hugeWorld.status, 0)
    XCTAssertTrue(hugeWorld.error.contains("WORLD_SIZE 9999999999999"), hugeWorld.error)
  }

  static func children(of pid: Int32) -> [Int32] {
    let text = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? ""
    return text.split(separator: " ").compactMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
  }

  static func environment(of pid: Int32) -> [String: String] {
    guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return [:] }
    var result: [String: String] = [:]
    for entry in data.split(separator: 0) {
      let text = String(decoding: entry, as: UTF8.self)
      if let equals = text.firstIndex(of: "=") { result[String(text[..<equals])] = String(text[text.index(after: equals)...]) }
    }
    return result
  }
}

/// A TCP socket listening on a port of the kernel's choice, closed on deinit.
private final class ListeningSocket {
  let descriptor: Int32
  let port: Int

  init() throws {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr = in_addr(s_addr: INADDR_ANY)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &address) { pointer in
      pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(descriptor, $0, length) == 0 && listen(descriptor, 1) == 0 && getsockname(descriptor, $0, &length) == 0
      }
    }
    guard ok else {
      close(descriptor)
      throw Oracle.Failure(description: "cannot listen: \(String(cString: strerror(errno)))")
    }
    self.descriptor = descriptor
    port = Int(UInt16(bigEndian: address.sin_port))
  }

  deinit { close(descriptor) }
}
