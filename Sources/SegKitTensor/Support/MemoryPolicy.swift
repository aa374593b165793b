#if canImport(Glibc)
import Glibc
#endif

extension Torch {
  /// Makes glibc keep freed memory in the process rather than give it back: otherwise
  /// each step's large activations (above malloc's mmap threshold, 32 MiB at most) are
  /// fresh mappings whose pages fault in again, which costs CPU training about a fifth
  /// of its speed. Process-wide; training, serving and the benchmarks call it once.
  public static func keepFreedMemory() {
    #if os(Linux)
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    let mallopt = unsafeBitCast(symbol, to: (@convention(c) (Int32, Int32) -> Int32).self)
    _ = mallopt(-4, 0)  // M_MMAP_MAX: no mmap-backed blocks
    _ = mallopt(-1, Int32.max)  // M_TRIM_THRESHOLD: never trim the heap top
    #endif
  }
}
