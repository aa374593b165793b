import Foundation

/// The service's counters in Prometheus' text format (GET /metrics): requests by route
/// and status, latency and batch-size histograms, the image queue's length, errors by
/// kind, sessions open. One lock; every update is a few additions.
public final class ServiceMetrics: @unchecked Sendable {
  private let lock = NSLock()
  private var requests: [String: Int] = [:]  // "route|status"
  private var errors: [String: Int] = [:]
  private static let latencyBounds: [Double] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
  private var latency = Histogram(bounds: ServiceMetrics.latencyBounds)
  private var batches = Histogram(bounds: [1, 2, 4, 8, 16, 32, 64])
  private var queueLength = 0
  private var sessions = 0

  struct Histogram {
    let bounds: [Double]
    var counts: [Int]
    var sum = 0.0
    var count = 0
    init(bounds: [Double]) {
      self.bounds = bounds
      counts = Array(repeating: 0, count: bounds.count)
    }
    mutating func observe(_ value: Double) {
      for (i, bound) in bounds.enumerated() where value <= bound { counts[i] += 1 }
      sum += value
      count += 1
    }
  }

  public init() {}

  func request(route: String, status: Int, seconds: Double) {
    lock.withLock {
      requests["\(route)|\(status)", default: 0] += 1
      latency.observe(seconds)
    }
  }

  func error(kind: String) { lock.withLock { errors[kind, default: 0] += 1 } }
  func batch(size: Int) { lock.withLock { batches.observe(Double(size)) } }
  func queue(length: Int) { lock.withLock { queueLength = length } }
  func sessions(open: Int) { lock.withLock { sessions = open } }

  /// The exposition text.
  public func text() -> String {
    lock.withLock {
      var lines: [String] = []
      lines.append("# HELP segkit_requests_total Requests answered, by route and status.")
      lines.append("# TYPE segkit_requests_total counter")
      for key in requests.keys.sorted() {
        let pair = key.split(separator: "|", maxSplits: 1).map(String.init)
        lines.append("segkit_requests_total{route=\"\(pair[0])\",status=\"\(pair[1])\"} \(requests[key]!)")
      }
      lines.append("# HELP segkit_errors_total Requests refused or failed, by kind.")
      lines.append("# TYPE segkit_errors_total counter")
      for key in errors.keys.sorted() { lines.append("segkit_errors_total{kind=\"\(key)\"} \(errors[key]!)") }
      lines += histogram("segkit_request_seconds", "Time from a request's arrival to its answer.", latency)
      lines += histogram("segkit_batch_size", "Images per model run (micro-batching).", batches)
      lines.append("# HELP segkit_queue_length Image requests waiting for a model.")
      lines.append("# TYPE segkit_queue_length gauge")
      lines.append("segkit_queue_length \(queueLength)")
      lines.append("# HELP segkit_sessions Video sessions open.")
      lines.append("# TYPE segkit_sessions gauge")
      lines.append("segkit_sessions \(sessions)")
      return lines.joined(separator: "\n") + "\n"
    }
  }

  private func histogram(_ name: String, _ help: String, _ h: Histogram) -> [String] {
    var lines = ["# HELP \(name) \(help)", "# TYPE \(name) histogram"]
    for (bound, count) in zip(h.bounds, h.counts) { lines.append("\(name)_bucket{le=\"\(bound)\"} \(count)") }
    lines.append("\(name)_bucket{le=\"+Inf\"} \(h.count)")
    lines.append("\(name)_sum \(h.sum)")
    lines.append("\(name)_count \(h.count)")
    return lines
  }
}
