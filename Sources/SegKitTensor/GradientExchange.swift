import CTorchShim

/// Parameters' gradients summed over a process group while backward still runs, as
/// PyTorch's DistributedDataParallel does it: the parameters are cut into buckets in
/// reverse order (the order backward reaches them), the first small so that the
/// exchange starts early, and a hook on each parameter starts a bucket's all-reduce
/// as soon as all its gradients are accumulated. Only the buckets still running when
/// backward ends are waited for.
///
///     let exchange = try GradientExchange(group: group, parameters: parameters)
///     try exchange.arm(dividingBy: 1)
///     try loss.backward()
///     try exchange.finish()   // every gradient is now the sum of every rank's
///
/// Buckets start in order, so every rank starts the same collectives in the same
/// order (other collectives in between, such as synchronised batch norm's, are
/// fine). A bucket holding a parameter that got no gradient waits for `finish`;
/// such parameters keep no gradient, and the ranks must agree on which they are.
public final class GradientExchange {
  public let group: ProcessGroup
  public let parameters: [Tensor]
  /// How many buckets the parameters are cut into.
  public let bucketCount: Int
  /// How many buckets the hooks started during the last backward pass (the others
  /// started in `finish`).
  public private(set) var bucketsStartedInBackward = 0
  private let handle: sk_gradient_exchange

  /// `firstBucketBytes` and `bucketBytes` are DistributedDataParallel's defaults.
  public init(group: ProcessGroup, parameters: [Tensor], firstBucketBytes: Int = 1 << 20, bucketBytes: Int = 25 << 20) throws {
    guard firstBucketBytes > 0, bucketBytes > 0 else {
      throw TorchError("gradient exchange: bucket sizes \(firstBucketBytes) and \(bucketBytes) bytes must be positive")
    }
    var out: sk_gradient_exchange?
    try withExtendedLifetime(parameters) {
      let handles: [sk_tensor?] = parameters.map(\.handle)
      try check(sk_gradient_exchange_new(group.handle, handles, Int64(handles.count), Int64(firstBucketBytes),
                                         Int64(bucketBytes), &out))
    }
    guard let out else { throw TorchError("the gradient exchange was not created") }
    self.handle = out
    self.group = group
    self.parameters = parameters
    self.bucketCount = Int(sk_gradient_exchange_bucket_count(out))
  }

  deinit { sk_gradient_exchange_free(handle) }

  /// Makes the next backward pass exchange the gradients, each first divided by
  /// `divisor` (the batches accumulated into it, averaged as before the exchange).
  public func arm(dividingBy divisor: Int = 1) throws {
    guard divisor > 0 else { throw TorchError("gradient exchange: divisor \(divisor) must be positive") }
    try check(sk_gradient_exchange_arm(handle, Double(divisor)))
  }

  /// Starts the buckets backward did not complete, waits for every bucket and
  /// writes the sums into the gradients.
  public func finish() throws {
    var started: Int64 = 0
    try group.collective("gradient exchange") { sk_gradient_exchange_finish(handle, &started) }
    bucketsStartedInBackward = Int(started)
  }
}
