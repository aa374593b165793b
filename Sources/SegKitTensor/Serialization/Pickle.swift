import Foundation

/// A value built by the restricted unpickler. Containers live in a `PickleArena`
/// and are referred to by index, so that cycles or deep nesting in a hostile file
/// cannot exhaust the stack when values are released.
enum PickleValue {
  case none
  case bool(Bool)
  case int(Int)
  /// An integer too wide for `Int`: its little-endian two's-complement bytes.
  case largeInt([UInt8])
  case float(Double)
  case string(String)
  case bytes([UInt8])
  case tuple(Int)
  case list(Int)
  case dict(Int)
  case global(PickleGlobal)
  case storage(StorageReference)
  case tensor(TensorRecipe)
}

/// A dict in insertion order, as Python's. Keys are the hashable scalars state
/// dicts and checkpoints use.
struct PickleDict {
  private(set) var keys: [PickleValue] = []
  private(set) var values: [PickleValue] = []
  private var positions: [Key: Int] = [:]

  /// Python's key equality for the scalars we accept: True == 1 and 1.0 == 1.
  private enum Key: Hashable {
    case none, int(Int), float(UInt64), string(String), bytes([UInt8])
  }

  var isEmpty: Bool { keys.isEmpty }

  mutating func set(_ key: PickleValue, _ value: PickleValue) throws {
    let hashKey: Key
    switch key {
    case .none: hashKey = .none
    case .bool(let flag): hashKey = .int(flag ? 1 : 0)
    case .int(let number): hashKey = .int(number)
    case .float(let number): hashKey = Int(exactly: number).map { .int($0) } ?? .float(number.bitPattern)
    case .string(let text): hashKey = .string(text)
    case .bytes(let bytes): hashKey = .bytes(bytes)
    default: throw FormatProblem("unsupported dict key type")
    }
    if let position = positions[hashKey] {
      values[position] = value
    } else {
      positions[hashKey] = keys.count
      keys.append(key)
      values.append(value)
    }
  }
}

/// Where the unpickler keeps its containers.
struct PickleArena {
  var tuples: [[PickleValue]] = []
  var lists: [[PickleValue]] = []
  var dicts: [PickleDict] = []

  mutating func tuple(_ items: [PickleValue]) -> PickleValue {
    tuples.append(items)
    return .tuple(tuples.count - 1)
  }

  mutating func list(_ items: [PickleValue]) -> PickleValue {
    lists.append(items)
    return .list(lists.count - 1)
  }

  mutating func dict() -> PickleValue {
    dicts.append(PickleDict())
    return .dict(dicts.count - 1)
  }

  /// The items of a tuple or list.
  func items(_ value: PickleValue) -> [PickleValue]? {
    switch value {
    case .tuple(let id): return tuples[id]
    case .list(let id): return lists[id]
    default: return nil
    }
  }

  /// Python's name for the value's type, for error messages.
  static func typeName(_ value: PickleValue) -> String {
    switch value {
    case .none: return "None"
    case .bool: return "bool"
    case .int, .largeInt: return "int"
    case .float: return "float"
    case .string: return "str"
    case .bytes: return "bytes"
    case .tuple: return "tuple"
    case .list: return "list"
    case .dict: return "dict"
    case .global(let global): return global.name
    case .storage: return "storage"
    case .tensor: return "tensor"
    }
  }
}

/// The only Python globals a checkpoint may name. Anything else (os.system,
/// builtins.eval, a module class) is refused when the pickle names it, so
/// loading can never run code from the file.
enum PickleGlobal: Equatable {
  case orderedDict
  case rebuildTensor, rebuildTensorV2, rebuildParameter, rebuildParameterWithState
  /// torch.FloatStorage and friends, the storage types of persistent ids.
  case storageType(DType)
  case untypedStorage
  /// torch.float32 and friends.
  case dtype(DType)

  static let storageTypes: [String: DType] = [
    "DoubleStorage": .float64, "FloatStorage": .float32, "HalfStorage": .float16, "BFloat16Storage": .bfloat16,
    "LongStorage": .int64, "IntStorage": .int32, "ShortStorage": .int16, "CharStorage": .int8,
    "ByteStorage": .uint8, "BoolStorage": .bool,
  ]
  static let dtypes: [String: DType] = [
    "float64": .float64, "double": .float64, "float32": .float32, "float": .float32,
    "float16": .float16, "half": .float16, "bfloat16": .bfloat16,
    "int64": .int64, "long": .int64, "int32": .int32, "int": .int32, "int16": .int16, "short": .int16,
    "int8": .int8, "uint8": .uint8, "bool": .bool,
  ]

  init(module: String, name: String) throws {
    // Checkpoints saved from a GPU name torch.cuda storage types; everything loads on the CPU.
    if module == "torch" || module == "torch.cuda", let dtype = Self.storageTypes[name] {
      self = .storageType(dtype)
      return
    }
    if module == "torch", let dtype = Self.dtypes[name] {
      self = .dtype(dtype)
      return
    }
    switch (module, name) {
    case ("collections", "OrderedDict"): self = .orderedDict
    case ("torch._utils", "_rebuild_tensor"): self = .rebuildTensor
    case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensorV2
    case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
    case ("torch._utils", "_rebuild_parameter_with_state"): self = .rebuildParameterWithState
    case ("torch", "UntypedStorage"), ("torch.storage", "UntypedStorage"): self = .untypedStorage
    default:
      throw FormatProblem(
        "refusing global '\(module).\(name)': a weight file may only hold tensors and plain containers, "
          + "and loading never runs code from the file")
    }
  }

  var name: String {
    switch self {
    case .orderedDict: return "collections.OrderedDict"
    case .rebuildTensor: return "torch._utils._rebuild_tensor"
    case .rebuildTensorV2: return "torch._utils._rebuild_tensor_v2"
    case .rebuildParameter: return "torch._utils._rebuild_parameter"
    case .rebuildParameterWithState: return "torch._utils._rebuild_parameter_with_state"
    case .storageType(let dtype): return "torch.\(Self.storageTypes.first { $0.value == dtype }?.key ?? "Storage")"
    case .untypedStorage: return "torch.UntypedStorage"
    case .dtype(let dtype): return "torch.\(dtype)"
    }
  }
}

/// Reads one pickle (protocols 2 to 5) with the opcodes that `torch.save`
/// state dicts and checkpoints use. Globals are limited to `PickleGlobal`;
/// calls are interpreted, never executed; persistent ids go to `persistentLoad`.
final class Unpickler {
  typealias PersistentLoad = (_ id: PickleValue, _ arena: PickleArena) throws -> PickleValue

  private var reader: ByteReader
  private(set) var arena = PickleArena()
  private var stack: [PickleValue] = []
  /// Stack heights at each MARK.
  private var marks: [Int] = []
  private var memo: [Int: PickleValue] = [:]
  private let persistentLoad: PersistentLoad

  init(_ bytes: UnsafeRawBufferPointer, offset: Int = 0, persistentLoad: @escaping PersistentLoad) {
    reader = ByteReader(bytes, offset: offset)
    self.persistentLoad = persistentLoad
  }

  /// Where the next pickle would start once `load` has returned.
  var offset: Int { reader.offset }

  /// The object up to the STOP opcode.
  func load() throws -> PickleValue {
    while true {
      let opcodeOffset = reader.offset
      do {
        let opcode = try reader.readByte()
        if opcode == 0x2E { return try pop() }  // STOP
        try execute(opcode)
      } catch let problem as FormatProblem {
        throw FormatProblem("pickle, at byte \(opcodeOffset): \(problem.message)")
      }
    }
  }

  private func execute(_ opcode: UInt8) throws {
    switch opcode {
    case 0x80:  // PROTO
      let version = try reader.readByte()
      guard (2...5).contains(version) else { throw FormatProblem("unsupported pickle protocol \(version)") }
    case 0x95:  // FRAME: only a length; the whole pickle is in memory already.
      _ = try reader.readLittleEndian(UInt64.self)

    // Stack and memo.
    case 0x28: marks.append(stack.count)  // MARK
    case 0x30:  // POP: as Python, an empty frame drops the mark instead.
      if stack.count > (marks.last ?? 0) { _ = try pop() } else { _ = try popMark() }
    case 0x31: _ = try popMark()  // POP_MARK
    case 0x32: push(try top())  // DUP
    case 0x71: memo[Int(try reader.readByte())] = try top()  // BINPUT
    case 0x72: memo[Int(try reader.readLittleEndian(UInt32.self))] = try top()  // LONG_BINPUT
    case 0x94: memo[memo.count] = try top()  // MEMOIZE
    case 0x68: push(try memoized(Int(try reader.readByte())))  // BINGET
    case 0x6A: push(try memoized(Int(try reader.readLittleEndian(UInt32.self))))  // LONG_BINGET

    // Scalars.
    case 0x4E: push(.none)  // NONE
    case 0x88: push(.bool(true))  // NEWTRUE
    case 0x89: push(.bool(false))  // NEWFALSE
    case 0x4A: push(.int(Int(try reader.readLittleEndian(Int32.self))))  // BININT
    case 0x4B: push(.int(Int(try reader.readByte())))  // BININT1
    case 0x4D: push(.int(Int(try reader.readLittleEndian(UInt16.self))))  // BININT2
    case 0x8A: push(Self.long(try reader.read(Int(try reader.readByte()))))  // LONG1
    case 0x8B: push(Self.long(try reader.read(lengthPrefixed: Int32.self)))  // LONG4
    case 0x47: push(.float(Double(bitPattern: try reader.readBigEndian(UInt64.self))))  // BINFLOAT
    case 0x8C: push(.string(try text(reader.read(Int(reader.readByte())))))  // SHORT_BINUNICODE
    case 0x58: push(.string(try text(reader.read(lengthPrefixed: UInt32.self))))  // BINUNICODE
    case 0x8D: push(.string(try text(reader.read(lengthPrefixed: UInt64.self))))  // BINUNICODE8
    // Python 2 strings, decoded as UTF-8 as torch.load does by default.
    case 0x55: push(.string(try text(reader.read(Int(reader.readByte())))))  // SHORT_BINSTRING
    case 0x54: push(.string(try text(reader.read(lengthPrefixed: Int32.self))))  // BINSTRING
    case 0x43: push(.bytes(Array(try reader.read(Int(reader.readByte())))))  // SHORT_BINBYTES
    case 0x42: push(.bytes(Array(try reader.read(lengthPrefixed: UInt32.self))))  // BINBYTES
    case 0x8E, 0x96: push(.bytes(Array(try reader.read(lengthPrefixed: UInt64.self))))  // BINBYTES8, BYTEARRAY8

    // Containers.
    case 0x29: push(arena.tuple([]))  // EMPTY_TUPLE
    case 0x85, 0x86, 0x87:  // TUPLE1, TUPLE2, TUPLE3
      push(arena.tuple(try pop(Int(opcode - 0x84))))
    case 0x74: push(arena.tuple(try popMark()))  // TUPLE
    case 0x5D: push(arena.list([]))  // EMPTY_LIST
    case 0x6C: push(arena.list(try popMark()))  // LIST
    case 0x61:  // APPEND
      let item = try pop()
      try append([item])
    case 0x65: try append(try popMark())  // APPENDS
    case 0x7D: push(arena.dict())  // EMPTY_DICT
    case 0x64:  // DICT
      let items = try popMark()
      push(arena.dict())
      try setItems(items)
    case 0x73:  // SETITEM
      let pair = try pop(2)
      try setItems(pair)
    case 0x75: try setItems(try popMark())  // SETITEMS

    // Objects: only the allowed globals, interpreted here.
    case 0x63:  // GLOBAL
      let module = try text(reader.readLine())
      let name = try text(reader.readLine())
      push(.global(try PickleGlobal(module: module, name: name)))
    case 0x93:  // STACK_GLOBAL
      let names = try pop(2)
      guard case .string(let module) = names[0], case .string(let name) = names[1] else {
        throw FormatProblem("STACK_GLOBAL needs two strings")
      }
      push(.global(try PickleGlobal(module: module, name: name)))
    case 0x52:  // REDUCE
      let callAndArguments = try pop(2)
      push(try call(callAndArguments[0], arguments: callAndArguments[1]))
    case 0x81:  // NEWOBJ
      push(try instantiate(try pop(2)[0]))
    case 0x92:  // NEWOBJ_EX
      push(try instantiate(try pop(3)[0]))
    case 0x62:  // BUILD
      _ = try pop()
      try checkStateTarget(try top())
    case 0x51:  // BINPERSID
      push(try persistentLoad(try pop(), arena))

    default:
      throw FormatProblem("unsupported pickle opcode 0x\(String(opcode, radix: 16))")
    }
  }

  // MARK: Stack

  private func push(_ value: PickleValue) { stack.append(value) }

  /// The top value above the last mark (Python keeps marked frames apart).
  private func top() throws -> PickleValue {
    guard stack.count > (marks.last ?? 0), let value = stack.last else { throw FormatProblem("stack underflow") }
    return value
  }

  private func pop() throws -> PickleValue {
    try pop(1)[0]
  }

  /// The top `count` values above the last mark, oldest first.
  private func pop(_ count: Int) throws -> [PickleValue] {
    guard stack.count - count >= (marks.last ?? 0) else { throw FormatProblem("stack underflow") }
    defer { stack.removeLast(count) }
    return Array(stack.suffix(count))
  }

  private func popMark() throws -> [PickleValue] {
    guard let mark = marks.popLast() else { throw FormatProblem("no MARK before a marked opcode") }
    defer { stack.removeSubrange(mark...) }
    return Array(stack[mark...])
  }

  private func memoized(_ index: Int) throws -> PickleValue {
    guard let value = memo[index] else { throw FormatProblem("memo entry \(index) is missing") }
    return value
  }

  private func append(_ items: [PickleValue]) throws {
    guard case .list(let id) = try top() else { throw FormatProblem("APPEND to a \(PickleArena.typeName(try top()))") }
    arena.lists[id].append(contentsOf: items)
  }

  private func setItems(_ keysAndValues: [PickleValue]) throws {
    guard case .dict(let id) = try top() else { throw FormatProblem("SETITEM on a \(PickleArena.typeName(try top()))") }
    guard keysAndValues.count % 2 == 0 else { throw FormatProblem("SETITEMS with an odd number of items") }
    for start in stride(from: 0, to: keysAndValues.count, by: 2) {
      try arena.dicts[id].set(keysAndValues[start], keysAndValues[start + 1])
    }
  }

  // MARK: Scalars

  private func text(_ bytes: UnsafeRawBufferPointer) throws -> String {
    guard let text = String(bytes: bytes, encoding: .utf8) else { throw FormatProblem("a string is not valid UTF-8") }
    return text
  }

  /// A little-endian two's-complement integer of any width.
  private static func long(_ bytes: UnsafeRawBufferPointer) -> PickleValue {
    guard bytes.count <= 8 else { return .largeInt(Array(bytes)) }
    var bits: UInt64 = 0
    for (index, byte) in bytes.enumerated() { bits |= UInt64(byte) << (8 * index) }
    if let last = bytes.last, last & 0x80 != 0, bytes.count < 8 { bits |= ~0 << (8 * bytes.count) }
    return .int(Int(Int64(bitPattern: bits)))
  }

  // MARK: Objects

  /// Interprets a call of an allowed global: the rebuild functions of tensors and
  /// parameters, and OrderedDict().
  private func call(_ callable: PickleValue, arguments: PickleValue) throws -> PickleValue {
    guard case .global(let global) = callable else {
      throw FormatProblem("REDUCE calls a \(PickleArena.typeName(callable)), which is not callable")
    }
    guard case .tuple(let id) = arguments else { throw FormatProblem("\(global.name) called without an argument tuple") }
    let args = arena.tuples[id]
    func expectArguments(_ counts: ClosedRange<Int>) throws {
      guard counts.contains(args.count) else {
        throw FormatProblem("\(global.name) called with \(args.count) arguments, expected \(counts.lowerBound)...\(counts.upperBound)")
      }
    }
    switch global {
    case .orderedDict:
      try expectArguments(0...0)
      return arena.dict()
    case .rebuildTensor:
      try expectArguments(4...4)
      return .tensor(try tensorRecipe(args))
    case .rebuildTensorV2:
      // (storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
      try expectArguments(6...7)
      if args.count == 7, case .dict(let metadata) = args[6], !arena.dicts[metadata].isEmpty {
        let keys = arena.dicts[metadata].keys.map { key -> String in if case .string(let k) = key { return k } else { return "?" } }
        throw FormatProblem("tensor with metadata \(keys) (conjugate or negative views) is not supported")
      }
      return .tensor(try tensorRecipe(args))
    case .rebuildParameter, .rebuildParameterWithState:
      // (data, requires_grad, backward_hooks[, state]): the parameter is its data.
      try expectArguments(global == .rebuildParameter ? 3...4 : 4...4)
      guard case .tensor = args[0] else {
        throw FormatProblem("\(global.name) expects a tensor, got a \(PickleArena.typeName(args[0]))")
      }
      return args[0]
    case .storageType, .untypedStorage, .dtype:
      throw FormatProblem("calling \(global.name) is not allowed")
    }
  }

  /// (storage, storage_offset, size, stride, ...) as `_rebuild_tensor` takes them.
  private func tensorRecipe(_ args: [PickleValue]) throws -> TensorRecipe {
    guard case .storage(let storage) = args[0] else {
      throw FormatProblem("a tensor rebuilt from a \(PickleArena.typeName(args[0])) instead of a storage")
    }
    guard case .int(let offset) = args[1] else { throw FormatProblem("a tensor's storage offset is not an int") }
    return try TensorRecipe(storage: storage, offset: offset, shape: try integers(args[2], "size"),
                            strides: try integers(args[3], "stride"))
  }

  private func integers(_ value: PickleValue, _ what: String) throws -> [Int] {
    guard let items = arena.items(value) else {
      throw FormatProblem("a tensor's \(what) is a \(PickleArena.typeName(value)), not a tuple")
    }
    return try items.map { item in
      guard case .int(let number) = item else { throw FormatProblem("a tensor's \(what) holds a \(PickleArena.typeName(item))") }
      return number
    }
  }

  /// `cls.__new__(cls, ...)`: only dicts may be created this way.
  private func instantiate(_ cls: PickleValue) throws -> PickleValue {
    guard case .global(.orderedDict) = cls else { throw FormatProblem("cannot create an instance of \(PickleArena.typeName(cls))") }
    return arena.dict()
  }

  /// BUILD sets attributes (an OrderedDict's `_metadata`, a tensor's Python
  /// attributes); they do not change the weights, so the state is dropped.
  private func checkStateTarget(_ object: PickleValue) throws {
    switch object {
    case .dict, .tensor: return
    default: throw FormatProblem("cannot set the state of a \(PickleArena.typeName(object))")
    }
  }
}
