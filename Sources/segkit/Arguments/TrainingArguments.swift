import ArgumentParser
import Foundation
import SegKitTensor
import SegKitTraining

/// The options of `segkit train` and `segkit vos train`, and the run they drive.
struct TrainingArguments: ParsableArguments {
  @Option(help: ArgumentHelp("YAML file of settings.", valueName: "file.yaml"))
  var config: String?

  @Option(name: .customLong("set"), help: ArgumentHelp("Override one setting (repeatable); see SETTINGS below.", valueName: "key=value"))
  var settings: [String] = []

  @Option(name: .customLong("run"), help: ArgumentHelp(
    "Run folder, new or empty (default: train_logdir, else runs/DATE_MODEL_N).", valueName: "dir"))
  var runFolder: String?

  @Option(help: ArgumentHelp(
    "Continue the run in this folder from its latest checkpoint, with its config.yaml and any --set.", valueName: "run-dir"))
  var resume: String?

  @Flag(help: "Print plain log lines even on a terminal (no progress bar).")
  var plain = false

  @Option(help: "Data-parallel processes to start on this machine.")
  var nprocPerNode = 1

  @Option(help: "Machines in a data-parallel run (start segkit on each).")
  var nnodes = 1

  @Option(help: "This machine's index, 0 to nnodes - 1 (0 serves the rendezvous).")
  var nodeRank = 0

  @Option(help: "Address of machine 0, where the processes meet.")
  var masterAddr = "127.0.0.1"

  @Option(help: "Port of the meeting point on machine 0.")
  var masterPort = 29500

  @Option(help: "Seconds a process waits for the others (joining, each exchange) before it gives up.")
  var distTimeout = 1800.0

  func validate() throws {
    // Zero is not read as one: a launcher asked for no processes is a mistake to report.
    for (option, value) in [("--nproc-per-node", nprocPerNode), ("--nnodes", nnodes)] where value < 1 {
      throw ValidationError("\(option) must be at least 1, got \(value)")
    }
    guard (0..<nnodes).contains(nodeRank) else { throw ValidationError("--node-rank must be 0 to --nnodes - 1, got \(nodeRank)") }
    guard distTimeout > 0, distTimeout.isFinite else { throw ValidationError("--dist-timeout must be a positive number of seconds, got \(distTimeout)") }
    if resume != nil && (config != nil || runFolder != nil) {
      throw ValidationError("--resume takes the run's own config.yaml and folder: give --set overrides only, not --config or --run")
    }
  }

  /// Trains from `defaults`, then the config file, then the overrides; with
  /// `defaults.task` other than semantic, only that task (the command's own).
  func train(defaults: TrainingConfig, command: String) throws {
    Torch.keepFreedMemory()
    let environment: DistributedEnvironment?
    do { environment = try DistributedEnvironment.read() } catch let error as TrainingError { throw CommandError(error.message) }
    if environment == nil, nprocPerNode > 1 || nnodes > 1 {
      return try launchWorkers(defaults: defaults, command: command)
    }
    let console: TrainerConsole = plain || environment != nil ? .lines : .automatic
    let trainer: Trainer
    do {
      let dataParallel = try environment.map { DataParallel(group: try $0.join(timeout: distTimeout)) }
      if let resume {
        trainer = try Trainer(resuming: URL(fileURLWithPath: resume), overrides: settings, console: console, dataParallel: dataParallel)
      } else {
        let resolved = try TrainingConfig.resolve(file: config.map { URL(fileURLWithPath: $0) }, overrides: settings, defaults: defaults)
        try Self.requireTask(of: resolved, defaults: defaults, command: command)
        let folder = runFolder ?? resolved.run.trainLogdir
        if environment != nil && folder == nil {
          throw TrainingError("a data-parallel run needs --run DIR (or train_logdir): every process must name the same folder")
        }
        trainer = try Trainer(config: resolved, runFolder: folder.map { URL(fileURLWithPath: $0) } ?? RunLayout.nextDefault(model: resolved.model.name).url, console: console, dataParallel: dataParallel)
      }
    } catch let error as TrainingError {
      throw CommandError(error.message)
    }
    try Self.requireTask(of: trainer.config, defaults: defaults, command: command)
    let runPath = trainer.run?.url.path ?? "(none)"
    let speaks = trainer.role.writes
    if speaks { print("run folder: \(runPath)") }
    // Launched workers stop when the launcher says so (SIGTERM), not on the terminal's Ctrl-C,
    // which reaches the launcher too: every worker then hears one request.
    let launched = ProcessInfo.processInfo.environment[WorkerLauncher.launchedVariable] == "1"
    let stop = Interrupt.install(signals: launched ? [SIGTERM] : [SIGINT, SIGTERM])
    let outcome: TrainingOutcome
    do {
      outcome = try trainer.train(shouldStop: { stop.requested })
    } catch let error as TrainingError {
      throw CommandError(error.message)
    }
    switch outcome {
    case .finished where !speaks: break
    case .interrupted where !speaks: throw ExitCode(130)
    case .finished(_, let validation):
      if let validation {
        print(validation.metrics.map { "\($0.name) " + String(format: "%.4f", $0.value) }.joined(separator: ", "))
      }
      if let run = trainer.run { print("weights: \(run.finalWeightsURL.path)") }
    case .interrupted(let step, let checkpoint):
      print("interrupted at step \(step): checkpoint \(checkpoint?.path ?? "none")")
      print("continue with: \(command) --resume \(runPath)")
      throw ExitCode(130)
    }
  }

  /// Starts this machine's workers (this command again, with torchrun's variables) and waits.
  private func launchWorkers(defaults: TrainingConfig, command: String) throws {
    var launcher = WorkerLauncher(processesPerNode: nprocPerNode)
    (launcher.nodes, launcher.nodeRank, launcher.masterAddress, launcher.masterPort) = (nnodes, nodeRank, masterAddr, masterPort)
    var arguments = Array(CommandLine.arguments.dropFirst())
    if resume == nil && runFolder == nil {
      // Every worker must name the same folder: resolve the default name once, here.
      let resolved = try TrainingConfig.resolve(file: config.map { URL(fileURLWithPath: $0) }, overrides: settings, defaults: defaults)
      arguments += ["--run", (resolved.run.trainLogdir.map { URL(fileURLWithPath: $0) } ?? RunLayout.nextDefault(model: resolved.model.name).url).path]
    }
    let status: Int32
    do {
      let executable = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
      status = try launcher.run(executable: executable, arguments: arguments) {
        FileHandle.standardError.write(Data("error: \($0)\n".utf8))
      }
    } catch let error as TrainingError {
      throw CommandError(error.message)
    }
    if status != 0 { throw ExitCode(status) }
  }

  private static func requireTask(of config: TrainingConfig, defaults: TrainingConfig, command: String) throws {
    guard defaults.task != .semantic, config.task != defaults.task else { return }
    throw CommandError("\(command) trains task \(defaults.task.rawValue); this configuration says task \(config.task.rawValue) (use segkit train for it)")
  }
}
