import CTorchShim
import Foundation

/// One process's membership of a group of processes that compute together: c10d's
/// process group, the engine under PyTorch's DistributedDataParallel (Gloo on the
/// CPU). Processes meet through a TCP store that rank 0 serves at `host:port`;
/// every call of every rank, joining included, waits at most `timeout`, so a peer
/// that never comes or has died fails each of the others with libtorch's message
/// instead of hanging them.
///
/// Collectives are blocking and must be called by every rank in the same order,
/// with tensors of the same shape and type (dense and contiguous, on the CPU).
public final class ProcessGroup {
  public enum Backend: Sendable { case gloo }

  /// The most processes a group may hold (the shim counts ranks in 32 bits).
  public static let largestWorld = 1 << 20

  public let rank: Int
  public let worldSize: Int
  public let timeout: TimeInterval
  let handle: sk_process_group

  public init(host: String, port: Int, rank: Int, worldSize: Int, backend: Backend = .gloo, timeout: TimeInterval = 300) throws {
    guard (1...Self.largestWorld).contains(worldSize), (0..<worldSize).contains(rank) else {
      throw TorchError("rank \(rank) of world size \(worldSize): need 0 ≤ rank < world size ≤ \(Self.largestWorld)")
    }
    guard (1...65535).contains(port) else { throw TorchError("port \(port) is not 1 to 65535") }
    guard timeout > 0, timeout <= 7 * 86400 else { throw TorchError("timeout \(timeout) s is not a timeout") }
    var out: sk_process_group?
    do {
      try check(sk_process_group_new(host, Int32(port), Int32(rank), Int32(worldSize), SK_BACKEND_GLOO,
                                     Int64((timeout * 1000).rounded(.up)), &out))
    } catch let error as TorchError {
      throw TorchError("rank \(rank) of \(worldSize) could not join the group at \(host):\(port): \(error.message)")
    }
    guard let out else { throw TorchError("the process group was not created") }
    self.handle = out
    self.rank = rank
    self.worldSize = worldSize
    self.timeout = timeout
  }

  deinit { sk_process_group_free(handle) }

  public enum Reduction: Sendable { case sum, max, min }

  /// Replaces `tensor`, on every rank, with the sum (or max, min) of every rank's.
  public func allReduce(_ tensor: Tensor, _ reduction: Reduction = .sum) throws {
    let op: sk_collective_op
    switch reduction {
    case .sum: op = SK_COLLECTIVE_SUM
    case .max: op = SK_COLLECTIVE_MAX
    case .min: op = SK_COLLECTIVE_MIN
    }
    try collective("all-reduce") { sk_all_reduce(handle, tensor.handle, op) }
  }

  /// Replaces `tensor`, on every rank, with rank `root`'s.
  public func broadcast(_ tensor: Tensor, from root: Int = 0) throws {
    try collective("broadcast") { sk_broadcast(handle, tensor.handle, Int32(root)) }
  }

  /// Every rank's `tensor`, in rank order.
  public func allGather(_ tensor: Tensor) throws -> [Tensor] {
    var out = [sk_tensor?](repeating: nil, count: worldSize)
    try collective("all-gather") { sk_all_gather(handle, tensor.handle, &out) }
    return out.map { Tensor(owning: $0!) }
  }

  /// Returns once every rank has called it.
  public func barrier() throws {
    try collective("barrier") { sk_barrier(handle) }
  }

  /// Names the rank and the operation in libtorch's message (which names only addresses).
  func collective(_ name: String, _ call: () -> sk_status) throws {
    do { try check(call()) } catch let error as TorchError {
      throw TorchError("rank \(rank) of \(worldSize), \(name): \(error.message)")
    }
  }
}

extension Tensor {
  /// Training-mode batch norm whose statistics are those of every rank's batch in
  /// `group` (PyTorch's SyncBatchNorm); the running statistics are updated in place.
  public func syncBatchNorm(
    group: ProcessGroup, weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?,
    momentum: Double = 0.1, eps: Double = 1e-5
  ) throws -> Tensor {
    try group.synchronizedBatchNorm(self, weight: weight, bias: bias, runningMean: runningMean, runningVar: runningVar,
                                    momentum: momentum, eps: eps)
  }
}

extension ProcessGroup {
  func synchronizedBatchNorm(
    _ input: Tensor, weight: Tensor?, bias: Tensor?, runningMean: Tensor?, runningVar: Tensor?, momentum: Double, eps: Double
  ) throws -> Tensor {
    var out: sk_tensor?
    try collective("synchronised batch norm") {
      sk_sync_batch_norm(handle, input.handle, weight?.handle, bias?.handle, runningMean?.handle, runningVar?.handle, momentum, eps, &out)
    }
    return Tensor(owning: out!)
  }
}
