import Foundation

/// A weight file that cannot be read or written. The description names the
/// file and the problem, so it can be shown to the user as it is.
public struct WeightFileError: Error, CustomStringConvertible, Equatable {
  public let path: String
  public let problem: String

  public init(path: String, problem: String) {
    self.path = path
    self.problem = problem
  }

  public var description: String { "\(path): \(problem)" }
}

/// What is wrong with some bytes, before we know (or say) which file they came from.
struct FormatProblem: Error {
  let message: String
  init(_ message: String) { self.message = message }
}

/// Runs `body` so that every error it throws names `url`: libtorch and
/// ZIPFoundation errors as much as our own format problems.
func naming<R>(_ url: URL, _ body: () throws -> R) throws -> R {
  do {
    return try body()
  } catch let error as WeightFileError {
    throw error
  } catch let problem as FormatProblem {
    throw WeightFileError(path: url.path, problem: problem.message)
  } catch let error as CocoaError {
    throw WeightFileError(path: url.path, problem: error.localizedDescription)
  } catch {
    throw WeightFileError(path: url.path, problem: "\(error)")
  }
}

/// Named tensors in a fixed order, as a model's `state_dict()`: the unit that
/// weight files hold. Lookup by name is O(1); iteration follows insertion order.
public struct StateDict: Sequence {
  public typealias Element = (name: String, tensor: Tensor)

  public private(set) var names: [String] = []
  private var tensors: [Tensor] = []
  private var positions: [String: Int] = [:]

  public init() {}

  /// Throws when a name appears twice: a weight file with two tensors of the same name is ambiguous.
  public init(_ pairs: [(String, Tensor)]) throws {
    for (name, tensor) in pairs {
      guard positions[name] == nil else { throw TorchError("state dict: duplicate tensor name '\(name)'") }
      set(name, tensor)
    }
  }

  public var count: Int { names.count }
  public var isEmpty: Bool { names.isEmpty }

  public subscript(name: String) -> Tensor? {
    positions[name].map { tensors[$0] }
  }

  /// Replaces the tensor named `name` in place, or appends it when the name is new.
  public mutating func set(_ name: String, _ tensor: Tensor) {
    if let position = positions[name] {
      tensors[position] = tensor
    } else {
      positions[name] = names.count
      names.append(name)
      tensors.append(tensor)
    }
  }

  public func makeIterator() -> AnyIterator<Element> {
    var position = 0
    return AnyIterator {
      guard position < names.count else { return nil }
      defer { position += 1 }
      return (names[position], tensors[position])
    }
  }

  /// Reads a safetensors file or a PyTorch `torch.save` checkpoint (zip or legacy
  /// format), recognised by its first bytes whatever the extension. Checkpoints
  /// are read without running any of their code: only tensors and plain
  /// containers are accepted.
  public static func load(contentsOf url: URL) throws -> StateDict {
    let format = try naming(url) { try WeightFileFormat.sniff(url) }
    CommandInputs.note(url)
    switch format {
    case .safetensors: return try SafeTensors.read(contentsOf: url).stateDict
    case .torchZip: return try TorchCheckpoint.loadZip(contentsOf: url)
    case .torchLegacy: return try TorchCheckpoint.loadLegacy(contentsOf: url)
    }
  }

  /// Writes the tensors, in order, as a safetensors file. The file appears
  /// complete or not at all: it is written beside `url` and renamed into place.
  public func save(to url: URL, metadata: [String: String] = [:]) throws {
    try SafeTensors.write(self, metadata: metadata, to: url)
  }
}

/// The weight file layouts `StateDict.load` understands.
enum WeightFileFormat {
  case safetensors, torchZip, torchLegacy

  /// The magic number 0x1950a86a20f9469cfc6c that opens a legacy `torch.save`
  /// file, pickled as a 10-byte LONG1 (opcode, length, little-endian bytes).
  static let legacyMagic: [UInt8] = [0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]

  static func sniff(_ url: URL) throws -> WeightFileFormat {
    let handle = try FileHandle(forReadingFrom: url)
    defer { try? handle.close() }
    let head = [UInt8](try handle.read(upToCount: 512) ?? Data())
    guard !head.isEmpty else { throw FormatProblem("the file is empty") }
    if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) || head.starts(with: [0x50, 0x4B, 0x05, 0x06]) {
      return .torchZip
    }
    // After PROTO (and, from protocol 4, a FRAME header) comes the magic number.
    if head[0] == 0x80, head.prefix(16).indices.contains(where: { head[$0...].starts(with: legacyMagic) }) {
      return .torchLegacy
    }
    // safetensors: a little-endian header length, then a JSON object.
    if head.count > 8, head[8] == UInt8(ascii: "{") { return .safetensors }
    if head.count >= 262, Array(head[257..<262]) == Array("ustar".utf8) {
      throw FormatProblem("a tar archive: the pre-1.0 PyTorch tar checkpoint format is not supported")
    }
    if head[0] == 0x80 {
      throw FormatProblem("a pickle but not a torch.save checkpoint (no PyTorch magic number)")
    }
    throw FormatProblem("not a weight file: neither safetensors nor a PyTorch checkpoint (zip or legacy)")
  }
}
