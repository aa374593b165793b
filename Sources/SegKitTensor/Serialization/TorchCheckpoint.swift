import Foundation
import ZIPFoundation

/// A tensor storage named by a pickle's persistent id: its key in the file,
/// element type and element count.
struct StorageReference: Hashable {
  let key: String
  let dtype: DType
  let count: Int
  let byteCount: Int

  init(key: String, dtype: DType, count: Int) throws {
    let (byteCount, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
    guard count >= 0, !overflow else { throw FormatProblem("storage '\(key)' has an impossible size of \(count) elements") }
    self.key = key
    self.dtype = dtype
    self.count = count
    self.byteCount = byteCount
  }
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view into a storage.
/// Checked against the storage's size here, so that building it cannot read out of bounds.
struct TensorRecipe {
  let storage: StorageReference
  let offset: Int
  let shape: [Int]
  let strides: [Int]

  init(storage: StorageReference, offset: Int, shape: [Int], strides: [Int]) throws {
    let what = "a tensor of size \(shape), stride \(strides) and offset \(offset) in storage '\(storage.key)'"
    guard shape.count == strides.count, offset >= 0, shape.allSatisfy({ $0 >= 0 }), strides.allSatisfy({ $0 >= 0 }) else {
      throw FormatProblem("\(what) is malformed")
    }
    var elementCount = 1
    var lastIndex = offset
    for (size, stride) in zip(shape, strides) {
      let (count, countOverflow) = elementCount.multipliedReportingOverflow(by: size)
      let (reach, reachOverflow) = (size == 0 ? 0 : size - 1).multipliedReportingOverflow(by: stride)
      let (index, indexOverflow) = lastIndex.addingReportingOverflow(reach)
      guard !countOverflow, !reachOverflow, !indexOverflow else { throw FormatProblem("\(what) is impossibly large") }
      elementCount = count
      lastIndex = index
    }
    guard elementCount == 0 || lastIndex < storage.count else {
      throw FormatProblem("\(what) reaches beyond the storage's \(storage.count) elements")
    }
    // Overlapping views (stride 0: expanded tensors) are materialised, so a few stored
    // bytes could claim gigabytes: they may grow to `maximumExpandedBytes`.
    let (bytes, bytesOverflow) = elementCount.multipliedReportingOverflow(by: storage.dtype.byteSize)
    guard elementCount <= storage.count || (!bytesOverflow && bytes <= TorchCheckpoint.maximumExpandedBytes) else {
      throw FormatProblem("\(what) holds \(elementCount) elements over a storage of \(storage.count): an expanded view "
        + "larger than \(TorchCheckpoint.maximumExpandedBytes) bytes once materialised")
    }
    self.storage = storage
    self.offset = offset
    self.shape = shape
    self.strides = strides
  }

  /// The tensor, contiguous and owning just its elements, except when it is the
  /// whole storage: then it shares it, as PyTorch's tied weights do.
  func build(from storageTensor: Tensor) throws -> Tensor {
    let view = try storageTensor.asStrided(shape: shape, strides: strides, offset: offset)
    guard view.isContiguous else { return try view.contiguous() }
    return offset == 0 && view.count == storage.count ? view : try view.clone()
  }
}

/// Reads the state dict in a PyTorch `torch.save` file without Python and
/// without running code: the zip format (torch >= 1.6) and the legacy format.
enum TorchCheckpoint {
  /// The most bytes an overlapping (expanded) view may take once materialised.
  nonisolated(unsafe) static var maximumExpandedBytes = 1 << 28

  /// The legacy format's protocol version, its second pickle.
  static let legacyProtocolVersion = 1001

  // MARK: Zip format

  /// `<archive>/data.pkl` holds the object; `<archive>/data/<key>` each storage's
  /// raw bytes, in the byte order `<archive>/byteorder` names (little when absent).
  static func loadZip(contentsOf url: URL) throws -> StateDict {
    try naming(url) {
      try ZipDirectory.validate(url)
      let archive: Archive
      do {
        archive = try Archive(url: url, accessMode: .read)
      } catch {
        throw FormatProblem("not a readable zip archive (\(error))")
      }
      let fileSize = try FileManager.default.attributesOfItem(atPath: url.path)[.size] as? UInt64 ?? 0
      // One pass over the central directory; looking entries up by path one at a time would rescan it.
      var entries: [String: Entry] = [:]
      var pickleEntry: Entry?
      for entry in archive where entries[entry.path] == nil {
        entries[entry.path] = entry
        if pickleEntry == nil, isDataPickle(entry.path) { pickleEntry = entry }
      }
      guard let pickleEntry else {
        throw FormatProblem("a zip archive without data.pkl: not a PyTorch checkpoint")
      }
      let folder = String(pickleEntry.path.dropLast("data.pkl".count))
      let bigEndian = try entries[folder + "byteorder"].map { entry -> Bool in
        let byteOrder = String(decoding: try contents(of: entry, in: archive, fileSize: fileSize), as: UTF8.self)
        guard byteOrder == "little" || byteOrder == "big" else { throw FormatProblem("unknown byte order '\(byteOrder)'") }
        return byteOrder == "big"
      } ?? false

      let references = StorageReferences()
      let pickle = try contents(of: pickleEntry, in: archive, fileSize: fileSize)
      let (root, arena) = try pickle.withUnsafeBytes { bytes in
        let unpickler = Unpickler(bytes, persistentLoad: references.resolve)
        return (try unpickler.load(), unpickler.arena)
      }
      var storages: [String: Tensor] = [:]
      var stateDict = StateDict()
      for (name, recipe) in try stateDictEntries(root, arena) {
        let key = recipe.storage.key
        let storage = try storages[key] ?? {
          guard let entry = entries[folder + "data/" + key] else {
            throw FormatProblem("storage '\(key)' is missing: no \(folder)data/\(key) in the archive")
          }
          let bytes = try contents(of: entry, in: archive, fileSize: fileSize)
          return try bytes.withUnsafeBytes { try storageTensor(recipe.storage, bytes: $0, bigEndian: bigEndian) }
        }()
        storages[key] = storage
        stateDict.set(name, try recipe.build(from: storage))
      }
      return stateDict
    }
  }

  /// `<folder>/data.pkl` directly under the archive's one top folder.
  private static func isDataPickle(_ path: String) -> Bool {
    let parts = path.split(separator: "/", omittingEmptySubsequences: false)
    return parts.count == 2 && parts[1] == "data.pkl"
  }

  /// The most bytes a compressed entry may inflate to (torch compresses none; a
  /// re-zipped checkpoint's largest storage must fit).
  nonisolated(unsafe) static var maximumInflatedBytes = 1 << 30

  /// An entry's bytes, checked against its CRC. Sizes are checked against the
  /// file before anything is allocated, so that a corrupt directory cannot ask for
  /// terabytes; a compressed entry (torch writes none) grows only as it inflates, and
  /// no further than its stated size and `maximumInflatedBytes`.
  private static func contents(of entry: Entry, in archive: Archive, fileSize: UInt64) throws -> Data {
    guard entry.compressedSize <= fileSize, entry.isCompressed || entry.uncompressedSize == entry.compressedSize,
          let size = Int(exactly: entry.uncompressedSize) else {
      throw FormatProblem("zip entry '\(entry.path)' claims \(entry.uncompressedSize) bytes, more than the file holds")
    }
    guard !entry.isCompressed || size <= maximumInflatedBytes else {
      throw FormatProblem("zip entry '\(entry.path)' inflates to \(size) bytes, more than the limit of \(maximumInflatedBytes)")
    }
    var data = Data()
    data.reserveCapacity(entry.isCompressed ? Int(entry.compressedSize) : size)
    let checksum: CRC32
    do {
      checksum = try archive.extract(entry, bufferSize: max(1, min(size, 1 << 22))) { chunk in
        guard chunk.count <= size - data.count else {
          throw FormatProblem("zip entry '\(entry.path)' inflates past its stated \(size) bytes")
        }
        data.append(chunk)
      }
    } catch let problem as FormatProblem {
      throw problem
    } catch {
      throw FormatProblem("cannot read zip entry '\(entry.path)' (\(error))")
    }
    guard data.count == size else {
      throw FormatProblem("zip entry '\(entry.path)' is truncated: \(data.count) of \(size) bytes")
    }
    guard checksum == entry.checksum else { throw FormatProblem("zip entry '\(entry.path)' is corrupt: its checksum does not match") }
    return data
  }

  // MARK: Legacy format

  /// Pickles in sequence: the magic number, the protocol version, system info, the
  /// object, the storage keys; then for each key an 8-byte little-endian element
  /// count and the storage's raw bytes.
  static func loadLegacy(contentsOf url: URL) throws -> StateDict {
    try naming(url) {
      // Read, not mapped: a file that shrinks while mapped (one still being written) kills the process with SIGBUS.
      let data = try Data(contentsOf: url)
      return try data.withUnsafeBytes { bytes in
        var offset = 0
        func nextPickle(_ persistentLoad: @escaping Unpickler.PersistentLoad = TorchCheckpoint.refusePersistentIDs) throws -> (PickleValue, PickleArena) {
          let unpickler = Unpickler(bytes, offset: offset, persistentLoad: persistentLoad)
          let value = try unpickler.load()
          offset = unpickler.offset
          return (value, unpickler.arena)
        }

        guard case .largeInt(let magic) = try nextPickle().0, magic == Array(WeightFileFormat.legacyMagic.dropFirst(2)) else {
          throw FormatProblem("not a legacy torch.save file: the magic number is missing")
        }
        guard case .int(let version) = try nextPickle().0, version == legacyProtocolVersion else {
          throw FormatProblem("unsupported legacy torch.save protocol version (expected \(legacyProtocolVersion))")
        }
        let bigEndian = try isBigEndian(systemInfo: nextPickle())
        let references = StorageReferences()
        let (root, arena) = try nextPickle(references.resolve)
        let (keyList, keyArena) = try nextPickle()
        guard let keyItems = keyArena.items(keyList) else {
          throw FormatProblem("the storage key list is a \(PickleArena.typeName(keyList)), not a list")
        }

        let entries = try stateDictEntries(root, arena)
        let neededKeys = Set(entries.map(\.1.storage.key))
        var reader = ByteReader(bytes, offset: offset)
        var storages: [String: Tensor] = [:]
        for item in keyItems {
          guard case .string(let key) = item, let reference = references.byKey[key] else {
            throw FormatProblem("the storage key list names a storage that no tensor uses")
          }
          let count = try reader.readLittleEndian(UInt64.self)
          guard count == UInt64(reference.count) else {
            throw FormatProblem("storage '\(key)' holds \(count) elements where its tensors expect \(reference.count)")
          }
          let storageBytes = try reader.read(reference.byteCount)
          if neededKeys.contains(key) {
            storages[key] = try storageTensor(reference, bytes: storageBytes, bigEndian: bigEndian)
          }
        }
        var stateDict = StateDict()
        for (name, recipe) in entries {
          guard let storage = storages[recipe.storage.key] else {
            throw FormatProblem("storage '\(recipe.storage.key)' of tensor '\(name)' has no data in the file")
          }
          stateDict.set(name, try recipe.build(from: storage))
        }
        return stateDict
      }
    }
  }

  private static func refusePersistentIDs(_ id: PickleValue, _ arena: PickleArena) throws -> PickleValue {
    throw FormatProblem("unexpected persistent id outside the checkpoint's object")
  }

  /// The `little_endian` flag of the legacy system-info dict (little when absent).
  private static func isBigEndian(systemInfo: (PickleValue, PickleArena)) throws -> Bool {
    guard case .dict(let id) = systemInfo.0 else { throw FormatProblem("the system info is not a dict") }
    let info = systemInfo.1.dicts[id]
    for (key, value) in zip(info.keys, info.values) {
      if case .string("little_endian") = key, case .bool(let little) = value { return !little }
    }
    return false
  }

  // MARK: Shared

  /// A storage as a 1-D tensor of its elements, swapped to little-endian when needed.
  private static func storageTensor(_ reference: StorageReference, bytes: UnsafeRawBufferPointer, bigEndian: Bool) throws -> Tensor {
    guard bytes.count == reference.byteCount else {
      throw FormatProblem("storage '\(reference.key)' holds \(bytes.count) bytes where \(reference.count) \(reference.dtype) elements need \(reference.byteCount)")
    }
    let elementSize = reference.dtype.byteSize
    guard bigEndian, elementSize > 1 else {
      return try Tensor(bytes: bytes, shape: [reference.count], dtype: reference.dtype)
    }
    var swapped = [UInt8](bytes)
    for start in stride(from: 0, to: swapped.count, by: elementSize) {
      swapped[start..<start + elementSize].reverse()
    }
    return try swapped.withUnsafeBytes { try Tensor(bytes: $0, shape: [reference.count], dtype: reference.dtype) }
  }

  /// The named tensors of the checkpoint: the top dict when it holds only tensors,
  /// else the one nested dict of tensors (a training checkpoint's "state_dict" or
  /// "model" when there are several).
  static func stateDictEntries(_ root: PickleValue, _ arena: PickleArena) throws -> [(String, TensorRecipe)] {
    guard case .dict(let rootID) = root else {
      throw FormatProblem("the checkpoint holds a \(PickleArena.typeName(root)), not a state dict (a dict of tensors)")
    }
    let top = arena.dicts[rootID]
    if let entries = tensorEntries(top) { return entries }

    var candidates: [(key: String, entries: [(String, TensorRecipe)])] = []
    for (key, value) in zip(top.keys, top.values) {
      if case .string(let name) = key, case .dict(let id) = value, !arena.dicts[id].isEmpty,
         let entries = tensorEntries(arena.dicts[id]) {
        candidates.append((name, entries))
      }
    }
    let preferred = candidates.filter { ["state_dict", "model"].contains($0.key) }
    if candidates.count == 1 || preferred.count == 1, let chosen = candidates.count == 1 ? candidates.first : preferred.first {
      return chosen.entries
    }
    if candidates.isEmpty {
      let contents = zip(top.keys, top.values).prefix(12).map { key, value in
        "\(describeKey(key)) (\(PickleArena.typeName(value)))"
      }
      throw FormatProblem("no state dict in the checkpoint: its top-level dict holds \(contents.joined(separator: ", ")), and none is a dict of tensors")
    }
    throw FormatProblem("ambiguous checkpoint: several dicts of tensors (\(candidates.map { "'\($0.key)'" }.joined(separator: ", "))), none of them the only 'state_dict' or 'model'")
  }

  /// The entries of a dict whose keys are all strings and whose values are all tensors.
  private static func tensorEntries(_ dict: PickleDict) -> [(String, TensorRecipe)]? {
    var entries: [(String, TensorRecipe)] = []
    for (key, value) in zip(dict.keys, dict.values) {
      guard case .string(let name) = key, case .tensor(let recipe) = value else { return nil }
      entries.append((name, recipe))
    }
    return entries
  }

  private static func describeKey(_ key: PickleValue) -> String {
    switch key {
    case .string(let text): return "'\(text)'"
    case .int(let number): return String(number)
    default: return PickleArena.typeName(key)
    }
  }
}

/// The storages the object pickle names through persistent ids
/// `('storage', storage_type, key, location, numel[, view_metadata])`.
/// The location (e.g. 'cuda:0') is ignored: everything loads on the CPU.
final class StorageReferences {
  private(set) var byKey: [String: StorageReference] = [:]

  func resolve(_ id: PickleValue, _ arena: PickleArena) throws -> PickleValue {
    guard let items = arena.items(id), items.count == 5 || items.count == 6, case .string("storage") = items[0] else {
      throw FormatProblem("unsupported persistent id (a \(PickleArena.typeName(id))): only tensor storages are allowed")
    }
    let dtype: DType
    switch items[1] {
    case .global(.storageType(let type)), .global(.dtype(let type)): dtype = type
    // torch.load reads an untyped storage as bytes.
    case .global(.untypedStorage): dtype = .uint8
    default: throw FormatProblem("persistent id with storage type \(PickleArena.typeName(items[1]))")
    }
    let key: String
    switch items[2] {
    case .string(let text): key = text
    case .int(let number): key = String(number)
    default: throw FormatProblem("persistent id with a storage key of type \(PickleArena.typeName(items[2]))")
    }
    guard case .int(let count) = items[4] else { throw FormatProblem("storage '\(key)' has a non-integer size") }
    if items.count == 6 {
      guard case .none = items[5] else {
        throw FormatProblem("storage '\(key)' is a view of another storage (legacy view metadata), which is not supported")
      }
    }
    let reference = try StorageReference(key: key, dtype: dtype, count: count)
    if let known = byKey[key], known != reference {
      throw FormatProblem("storage '\(key)' is used both as \(known.count) \(known.dtype) and as \(count) \(dtype) elements")
    }
    byKey[key] = reference
    return .storage(reference)
  }
}
