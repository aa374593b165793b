import Foundation
import SegKitFuzzTargets

// Built with `scripts/fuzz.sh` (-sanitize=fuzzer -DLIBFUZZER) this is a libFuzzer
// binary for one target; built plainly it replays files through a target.
//
//   segkit-fuzz TARGET [libFuzzer options] [CORPUS...]   (libFuzzer build)
//   segkit-fuzz TARGET FILE...                           (plain build: replay)

nonisolated(unsafe) var chosenTarget = FuzzTarget.mat

func usage() -> Never {
  FileHandle.standardError.write(Data("usage: segkit-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) ...\n".utf8))
  exit(2)
}

#if LIBFUZZER
@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
  _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
  _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt
#endif

@main
struct FuzzMain {
  static func main() {
    let arguments = CommandLine.arguments
    guard arguments.count >= 2, let target = FuzzTarget(rawValue: arguments[1]) else { usage() }
    chosenTarget = target
    defer { FuzzTarget.cleanUp() }
    #if LIBFUZZER
      // libFuzzer sees the arguments after the target's name.
      var rest = [arguments[0]] + arguments.dropFirst(2)
      var pointers = rest.indices.map { strdup(rest[$0]) } + [nil]
      var argc = CInt(rest.count)
      let status = pointers.withUnsafeMutableBufferPointer { buffer -> CInt in
        var argv = buffer.baseAddress
        return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
          chosenTarget.run(data.map { Data(bytes: $0, count: size) } ?? Data())
          return 0
        }
      }
      rest.removeAll()
      exit(status)
    #else
      for path in arguments.dropFirst(2) {
        guard let data = FileManager.default.contents(atPath: path) else {
          FileHandle.standardError.write(Data("\(path): cannot be read\n".utf8))
          exit(1)
        }
        print("\(path): \(target.run(data) ? "accepted" : "rejected")")
      }
    #endif
  }
}
