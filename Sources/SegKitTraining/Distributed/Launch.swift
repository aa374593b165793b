import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Where this process sits in a data-parallel run, from the variables torchrun (and
/// `segkit train --nproc-per-node`) set: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR,
/// MASTER_PORT. Slurm's srun or any launcher that sets them starts SegKit the same way.
public struct DistributedEnvironment: Sendable, Equatable {
  public let rank: Int
  public let worldSize: Int
  public let localRank: Int
  public let masterAddress: String
  public let masterPort: Int

  public init(rank: Int, worldSize: Int, localRank: Int, masterAddress: String, masterPort: Int) throws {
    guard (1...ProcessGroup.largestWorld).contains(worldSize), (0..<worldSize).contains(rank), localRank >= 0 else {
      throw TrainingError("RANK \(rank), WORLD_SIZE \(worldSize), LOCAL_RANK \(localRank): need 0 ≤ RANK < WORLD_SIZE ≤ \(ProcessGroup.largestWorld) and LOCAL_RANK ≥ 0")
    }
    guard (1...65535).contains(masterPort) else { throw TrainingError("MASTER_PORT \(masterPort) is not 1 to 65535") }
    guard !masterAddress.isEmpty else { throw TrainingError("MASTER_ADDR is empty") }
    self.rank = rank
    self.worldSize = worldSize
    self.localRank = localRank
    self.masterAddress = masterAddress
    self.masterPort = masterPort
  }

  /// The run's place from `environment`; nil when WORLD_SIZE is not set (one process).
  public static func read(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> DistributedEnvironment? {
    guard let world = environment["WORLD_SIZE"] else { return nil }
    func integer(_ name: String, default fallback: Int? = nil) throws -> Int {
      guard let text = environment[name] else {
        if let fallback { return fallback }
        throw TrainingError("WORLD_SIZE is set but \(name) is not: a data-parallel process needs RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT")
      }
      guard let value = Int(text.trimmingCharacters(in: .whitespaces)) else { throw TrainingError("\(name)='\(text)' is not an integer") }
      return value
    }
    guard let worldSize = Int(world.trimmingCharacters(in: .whitespaces)) else { throw TrainingError("WORLD_SIZE='\(world)' is not an integer") }
    let rank = try integer("RANK")
    return try DistributedEnvironment(
      rank: rank, worldSize: worldSize, localRank: try integer("LOCAL_RANK", default: rank),
      masterAddress: environment["MASTER_ADDR"] ?? "127.0.0.1", masterPort: try integer("MASTER_PORT", default: 29500))
  }

  /// Joins the run's process group (rank 0 serves its store at MASTER_ADDR:MASTER_PORT).
  public func join(timeout: TimeInterval) throws -> ProcessGroup {
    do {
      return try ProcessGroup(host: masterAddress, port: masterPort, rank: rank, worldSize: worldSize, timeout: timeout)
    } catch let error as TorchError {
      throw TrainingError(error.message)
    }
  }
}

/// Starts the worker processes of one machine (node) of a data-parallel run, as
/// torchrun does: one process per local rank with the torchrun variables set, then
/// waits. Ctrl-C or SIGTERM is passed on to every worker as SIGTERM (each checkpoints
/// and stops at the same step; a second one stops them at once). When a worker fails,
/// the others are stopped, and the error names the rank.
public struct WorkerLauncher {
  public var processesPerNode: Int
  public var nodes = 1
  public var nodeRank = 0
  public var masterAddress = "127.0.0.1"
  public var masterPort = 29500

  /// Set in each worker's environment: the launcher, not the terminal, stops workers.
  public static let launchedVariable = "SEGKIT_LAUNCHED"

  public init(processesPerNode: Int) { self.processesPerNode = processesPerNode }

  public var worldSize: Int { nodes * processesPerNode }

  public func check() throws {
    guard (1...1024).contains(processesPerNode) else { throw TrainingError("--nproc-per-node \(processesPerNode) is not 1 to 1024") }
    guard (1...100_000).contains(nodes) else { throw TrainingError("--nnodes \(nodes) is not a machine count") }
    guard worldSize <= ProcessGroup.largestWorld else {
      throw TrainingError("--nnodes \(nodes) × --nproc-per-node \(processesPerNode) is more than \(ProcessGroup.largestWorld) processes")
    }
    guard (0..<nodes).contains(nodeRank) else { throw TrainingError("--node-rank \(nodeRank) is not 0 to \(nodes - 1)") }
    guard (1...65535).contains(masterPort) else { throw TrainingError("--master-port \(masterPort) is not 1 to 65535") }
    if nodeRank == 0 {
      if let problem = Self.portProblem(masterPort) {
        throw TrainingError("--master-port \(masterPort): \(problem); choose another port")
      }
    }
  }

  /// Runs `executable arguments` once per local rank and waits for all of them. The
  /// exit status: 0 when every worker succeeded, 130 when they stopped on request,
  /// otherwise 1 with `report` told which rank failed first.
  public func run(executable: URL, arguments: [String], report: @escaping (String) -> Void) throws -> Int32 {
    try check()
    let workers = Workers()
    for local in 0..<processesPerNode {
      let rank = nodeRank * processesPerNode + local
      let process = Process()
      process.executableURL = executable
      process.arguments = arguments
      var environment = ProcessInfo.processInfo.environment
      environment["RANK"] = String(rank)
      environment["LOCAL_RANK"] = String(local)
      environment["WORLD_SIZE"] = String(worldSize)
      environment["MASTER_ADDR"] = masterAddress
      environment["MASTER_PORT"] = String(masterPort)
      environment[Self.launchedVariable] = "1"
      process.environment = environment
      process.terminationHandler = { workers.ended($0, rank: rank) }
      workers.add(process)
      do { try process.run() } catch {
        workers.stop()
        throw TrainingError("cannot start worker \(rank): \(error)")
      }
    }
    // A request to stop goes to every worker once; the workers agree on the step.
    var sources: [DispatchSourceSignal] = []
    for number in [SIGINT, SIGTERM] {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler { workers.stop() }
      source.resume()
      sources.append(source)
    }
    defer { sources.forEach { $0.cancel() } }
    for _ in 0..<processesPerNode { workers.finished.wait() }
    return workers.outcome(report: report)
  }

  /// The workers of one launch and how they ended, shared with their termination handlers.
  private final class Workers: @unchecked Sendable {
    let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var processes: [Process] = []
    private var stopping = false
    private var firstFailure: (rank: Int, status: Int32, signalled: Bool)?

    func add(_ process: Process) {
      lock.lock()
      processes.append(process)
      lock.unlock()
    }

    /// SIGTERM to every running worker.
    func stop() {
      lock.lock()
      stopping = true
      for process in processes where process.isRunning { kill(process.processIdentifier, SIGTERM) }
      lock.unlock()
    }

    func ended(_ process: Process, rank: Int) {
      lock.lock()
      let failed = process.terminationStatus != 0 && !(stopping && process.terminationStatus == 130)
      let first = failed && firstFailure == nil
      if first { firstFailure = (rank, process.terminationStatus, process.terminationReason == .uncaughtSignal) }
      lock.unlock()
      if first { stop() }
      finished.signal()
    }

    func outcome(report: (String) -> Void) -> Int32 {
      lock.lock()
      defer { lock.unlock() }
      if let failure = firstFailure {
        report("rank \(failure.rank) " + (failure.signalled ? "was killed by signal \(failure.status)" : "exited with status \(failure.status)")
                 + "; the other workers were stopped")
        return 1
      }
      return processes.contains { $0.terminationStatus == 130 } ? 130 : 0
    }
  }

  /// Why `port` cannot be served on this machine, or nil when it can.
  static func portProblem(_ port: Int) -> String? {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return nil }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr = in_addr(s_addr: INADDR_ANY)
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    return bound == 0 ? nil : String(cString: strerror(errno))
  }
}
