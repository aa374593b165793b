import CTorchShim
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A computation refused before it allocates: what it would need, and the cap.
public struct MemoryBudgetError: Error, CustomStringConvertible, LocalizedError {
  public let description: String
  public var errorDescription: String? { description }
}

/// The memory a command may take, checked against estimates made from declared sizes
/// (image headers, tensor shapes, requested export sizes) before anything large is
/// allocated, so that a small file declaring a huge size is refused with a message
/// instead of being met by the kernel's out-of-memory killer or a failed allocation.
///
/// The cap is `limit` when set (`--memory-limit`); otherwise what this process can
/// get: the machine's available memory, the container's memory limit and the
/// address-space limit (`ulimit -v`), whichever is smallest.
public enum MemoryBudget {
  nonisolated(unsafe) public static var limit: Int?

  /// The cap in bytes and where it comes from.
  public static func cap() -> (bytes: Int, source: String) {
    if let limit { return (limit, "--memory-limit") }
    var caps: [(Int, String)] = []
    if let available = meminfoValue("MemAvailable") { caps.append((available, "the machine's available memory")) }
    if let max = cgroupValue("memory.max"), let current = cgroupValue("memory.current") {
      caps.append((max - current, "the container's memory limit"))
    }
    var address = rlimit()
    if getrlimit(__rlimit_resource_t(RLIMIT_AS.rawValue), &address) == 0, address.rlim_cur != rlim_t.max,
       let mapped = statusValue("VmSize") {
      caps.append((Int(clamping: address.rlim_cur) - mapped, "the address-space limit (ulimit -v)"))
    }
    guard let smallest = caps.min(by: { $0.0 < $1.0 }) else { return (Int.max, "no known limit") }
    return (max(0, smallest.0), smallest.1)
  }

  /// Refuses `bytes` for `what` past the cap.
  public static func check(_ bytes: Int, for what: String) throws {
    let (cap, source) = cap()
    guard bytes > cap else { return }
    let limit = limit == nil ? "the \(format(cap)) this process may use (\(source)); --memory-limit SIZE sets the cap"
      : "--memory-limit \(format(cap))"
    throw MemoryBudgetError(description: "\(what) needs about \(format(bytes)), more than \(limit)")
  }

  /// "6.1 GB", "512 MB": decimal units, as people read memory sizes.
  public static func format(_ bytes: Int) -> String {
    let value = Double(bytes)
    if value >= 1e9 { return String(format: "%.1f GB", value / 1e9) }
    if value >= 1e6 { return String(format: "%.0f MB", value / 1e6) }
    return String(format: "%.0f kB", value / 1e3)
  }

  /// A size as `--memory-limit` takes it: bytes, or a number with K, M, G or T
  /// (powers of 1024; "GB" and "GiB" read as "G").
  public static func parse(_ text: String) -> Int? {
    let trimmed = text.trimmingCharacters(in: .whitespaces).uppercased()
    let units: [(String, Double)] = [("T", 0x1p40), ("G", 0x1p30), ("M", 0x1p20), ("K", 0x1p10)]
    var number = trimmed
    var scale = 1.0
    for suffix in ["IB", "B"] where number.hasSuffix(suffix) && number.count > suffix.count { number.removeLast(suffix.count); break }
    if let (unit, factor) = units.first(where: { number.hasSuffix($0.0) }) {
      number.removeLast(unit.count)
      scale = factor
    }
    guard let value = Double(number), value.isFinite, value > 0, value * scale < 0x1p62 else { return nil }
    return Int(value * scale)
  }

  /// Bytes the heap holds for the process now (nil where the C library does not say).
  public static func heapInUse() -> Int? {
    let bytes = sk_heap_bytes_in_use()
    return bytes >= 0 ? Int(bytes) : nil
  }

  private static func meminfoValue(_ key: String) -> Int? { kilobytes(key, in: "/proc/meminfo") }
  private static func statusValue(_ key: String) -> Int? { kilobytes(key, in: "/proc/self/status") }

  /// "Key:   1234 kB" from a /proc file, in bytes.
  private static func kilobytes(_ key: String, in path: String) -> Int? {
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(key + ":") {
      let fields = line.split(separator: " ")
      if fields.count >= 2, let value = Int(fields[1]) { return value * 1024 }
    }
    return nil
  }

  /// A cgroup v2 value of this process's group ("max" is no limit).
  private static func cgroupValue(_ file: String) -> Int? {
    guard let membership = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
          let line = membership.split(separator: "\n").first(where: { $0.hasPrefix("0::") }) else { return nil }
    let path = "/sys/fs/cgroup" + line.dropFirst(3) + "/" + file
    guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return nil }
    return Int(text.trimmingCharacters(in: .whitespacesAndNewlines))
  }
}
