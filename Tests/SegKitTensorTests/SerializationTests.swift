import Foundation
import SegKitTensor
import SegKitTestSupport
import XCTest

/// Weight files: safetensors both ways with Python's `safetensors`, PyTorch
/// checkpoints in the zip and legacy formats, hostile and corrupt input, and the
/// `segkit convert-weights` command. Fixtures are made by the oracle at run time.
final class SerializationTests: XCTestCase {
  // MARK: Fixtures

  /// What the fixture script reports: tensor orders as PyTorch keeps them, and the
  /// tensors of the safetensors file Python wrote, as hex bytes.
  private struct FixtureReport: Decodable {
    let mixedOrder: [String]
    let resnet18Order: [String]
    let checkpointOrder: [String]
    let bigEndianOrder: [String]
    let pythonTensors: [String: PythonTensor]
    let pythonMetadata: [String: String]
  }

  private struct PythonTensor: Decodable {
    let dtype: String
    let shape: [Int]
    let hex: String
  }

  private static let fixtureScript = """
    import collections, json, os, struct, sys, zipfile
    import numpy, torch, torchvision
    from safetensors.torch import save_file

    out = sys.argv[1]
    def path(name): return os.path.join(out, name)
    def expect(state_dict, name):
        save_file({k: v.detach().clone().contiguous() for k, v in state_dict.items()}, path(name))
    def both_formats(obj, name, protocol=2):
        torch.save(obj, path(name + '.pth'), pickle_protocol=protocol)
        torch.save(obj, path(name + '_legacy.pth'), pickle_protocol=protocol, _use_new_zipfile_serialization=False)
    def hexdump(t): return t.reshape(-1).view(torch.uint8).numpy().tobytes().hex()

    g = torch.Generator().manual_seed(0)
    base = torch.randn(4, 5, generator=g)
    mixed = collections.OrderedDict()
    mixed['slice'] = base[1:3]
    mixed['transposed'] = base.t()
    mixed['column'] = base[:, 2]
    mixed['whole'] = base
    mixed['expanded'] = torch.randn(3, 1, generator=g).expand(3, 4)
    mixed['float16'] = torch.randn(3, 2, generator=g).half()
    mixed['bfloat16'] = torch.randn(7, generator=g).bfloat16()
    mixed['float64'] = torch.randn(2, 3, generator=g).double()
    mixed['int64'] = torch.randint(-2**40, 2**40, (6,), generator=g)
    mixed['int32'] = torch.randint(-2**31, 2**31 - 1, (4,), generator=g, dtype=torch.int32)
    mixed['int16'] = torch.randint(-2**15, 2**15 - 1, (4,), generator=g, dtype=torch.int16)
    mixed['int8'] = torch.randint(-128, 127, (4,), generator=g, dtype=torch.int8)
    mixed['uint8'] = torch.randint(0, 255, (2, 2), generator=g, dtype=torch.uint8)
    mixed['bool'] = torch.rand(5, generator=g) > 0.5
    mixed['scalar'] = torch.tensor(3.5)
    mixed['empty'] = torch.zeros(0, 3)
    mixed['parameter'] = torch.nn.Parameter(torch.randn(2, 2, generator=g))
    mixed._metadata = collections.OrderedDict({'': {'version': 1}})
    both_formats(mixed, 'mixed')
    both_formats(mixed, 'mixed_protocol4', protocol=4)  # frames, MEMOIZE, STACK_GLOBAL
    expect(mixed, 'mixed.safetensors')

    torch.manual_seed(0)
    resnet18 = torchvision.models.resnet18().state_dict()
    both_formats(resnet18, 'resnet18')
    expect(resnet18, 'resnet18.safetensors')

    small = collections.OrderedDict(weight=torch.randn(3, 2, generator=g), bias=torch.randn(3, generator=g))
    both_formats({'epoch': 7, 'arch': 'tiny', 'state_dict': small,
                  'optimizer': {'state': {0: {'momentum_buffer': torch.zeros(3)}},
                                'param_groups': [{'lr': 0.1, 'params': [0, 1]}]}}, 'checkpoint')
    expect(small, 'checkpoint.safetensors')
    torch.save({'ema': small, 'student': small, 'step': 1}, path('ambiguous.pth'))

    # A big-endian zip checkpoint (byteorder 'big', storages byte-swapped), which torch reads too.
    big_endian = collections.OrderedDict(a=torch.randn(2, 3, generator=g), b=torch.randn(4, generator=g)[1:])
    torch.save(big_endian, path('little_endian.pth'))
    with zipfile.ZipFile(path('little_endian.pth')) as source, zipfile.ZipFile(path('big_endian.pth'), 'w') as target:
        for info in source.infolist():
            data = source.read(info.filename)
            folder = info.filename.split('/')[1]
            if folder == 'byteorder': data = b'big'
            elif folder == 'data': data = numpy.frombuffer(data, dtype='<f4').byteswap().tobytes()
            target.writestr(info.filename, data)
    reread = torch.load(path('big_endian.pth'))
    assert all(torch.equal(reread[k], v) for k, v in big_endian.items())
    expect(big_endian, 'big_endian.safetensors')

    python = {
        'f32': torch.randn(2, 3, generator=g), 'f64': torch.randn(3, generator=g).double(),
        'f16': torch.randn(4, generator=g).half(), 'bf16': torch.randn(2, 2, generator=g).bfloat16(),
        'i64': torch.randint(-2**50, 2**50, (3,), generator=g), 'i32': torch.tensor([-7, 2**30], dtype=torch.int32),
        'i16': torch.tensor([-300, 300], dtype=torch.int16), 'i8': torch.tensor([-128, 127], dtype=torch.int8),
        'u8': torch.tensor([0, 255], dtype=torch.uint8), 'bool': torch.tensor([True, False, True]),
        'scalar': torch.tensor(1.25), 'empty': torch.zeros(2, 0),
    }
    python_metadata = {'format': 'pt', 'note': 'ünïcode "quoted"\\n'}
    save_file(python, path('python.safetensors'), metadata=python_metadata)

    marker = path('marker')
    class SystemPayload:
        def __reduce__(self): return (os.system, (f'touch {marker}',))
    class EvalPayload:
        def __reduce__(self): return (eval, (f'open({marker!r}, "w")',))
    both_formats({'weight': torch.ones(2), 'payload': SystemPayload()}, 'evil_system')
    torch.save({'payload': EvalPayload()}, path('evil_eval.pth'))

    with zipfile.ZipFile(path('no_pickle.pth'), 'w') as archive:
        archive.writestr('archive/version', '3\\n')
        archive.writestr('archive/data/0', bytes(8))

    # Flip one byte of a storage in place: only its checksum tells.
    data = bytearray(open(path('checkpoint.pth'), 'rb').read())
    with zipfile.ZipFile(path('checkpoint.pth')) as archive:
        info = next(i for i in archive.infolist() if i.filename.split('/')[1] == 'data')
    name_length, extra_length = struct.unpack('<HH', data[info.header_offset + 26:info.header_offset + 30])
    data[info.header_offset + 30 + name_length + extra_length] ^= 0xFF
    open(path('bad_checksum.pth'), 'wb').write(bytes(data))

    print(json.dumps({
        'mixedOrder': list(mixed), 'resnet18Order': list(resnet18), 'checkpointOrder': list(small),
        'bigEndianOrder': list(big_endian),
        'pythonTensors': {k: {'dtype': str(v.dtype).removeprefix('torch.'), 'shape': list(v.shape), 'hex': hexdump(v)}
                          for k, v in python.items()},
        'pythonMetadata': python_metadata,
    }))
    """

  private static var fixtureFolder: URL?
  private static var fixtureResult: Result<FixtureReport, Error>?

  /// Runs the fixture script once for the whole class.
  private func fixtures() throws -> (folder: URL, report: FixtureReport) {
    if Self.fixtureResult == nil {
      Self.fixtureResult = Result {
        let folder = try Oracle.temporaryDirectory("segkit-serialization")
        Self.fixtureFolder = folder
        let output = try Oracle.run(Self.fixtureScript, arguments: [folder.path])
        return try JSONDecoder().decode(FixtureReport.self, from: Data(output.utf8))
      }
    }
    guard let folder = Self.fixtureFolder, let result = Self.fixtureResult else {
      throw Oracle.Failure(description: "the oracle fixtures were not created")
    }
    return (folder, try result.get())
  }

  override class func tearDown() {
    if let folder = fixtureFolder { try? FileManager.default.removeItem(at: folder) }
    super.tearDown()
  }

  private func temporaryFolder() throws -> URL {
    let folder = try Oracle.temporaryDirectory("segkit-serialization-test")
    addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
    return folder
  }

  // MARK: StateDict

  func testStateDictKeepsOrderAndLooksUpByName() throws {
    let a = try Tensor([1, 2] as [Float])
    let b = try Tensor([3] as [Int64])
    var stateDict = try StateDict([("b", b), ("a", a)])
    XCTAssertEqual(stateDict.names, ["b", "a"])
    XCTAssertEqual(stateDict.count, 2)
    XCTAssertEqual(try stateDict["a"]?.toArray(Float.self), [1, 2])
    XCTAssertNil(stateDict["c"])
    stateDict.set("b", a)
    stateDict.set("c", b)
    XCTAssertEqual(stateDict.map(\.name), ["b", "a", "c"])
    XCTAssertEqual(try stateDict["b"]?.toArray(Float.self), [1, 2])
    XCTAssertThrowsError(try StateDict([("x", a), ("x", b)]))
  }

  // MARK: safetensors

  func testSafeTensorsWrittenBySegKitReadByPython() throws {
    Torch.manualSeed(7)
    let base = try Tensor.randn([3, 4])
    let transposed = try base.transpose(0, 1)
    XCTAssertFalse(transposed.isContiguous)
    let stateDict = try StateDict([
      ("f32", base), ("f64", try base.to(.float64)), ("f16", try base.to(.float16)), ("bf16", try base.to(.bfloat16)),
      ("i64", try Tensor.randint(-1 << 40, 1 << 40, [5])), ("i32", try Tensor.randint(-1000, 1000, [2, 3], dtype: .int32)),
      ("i16", try Tensor.randint(-1000, 1000, [4], dtype: .int16)), ("i8", try Tensor.randint(-128, 128, [4], dtype: .int8)),
      ("u8", try Tensor.randint(0, 256, [4], dtype: .uint8)), ("bool", try Tensor([true, false, true] as [Bool])),
      ("transposed", transposed), ("scalar", try Tensor(scalar: 2.5)), ("empty", try Tensor.zeros([0, 3])),
      ("név \"with\" quotes\n", try Tensor([1] as [Float])),
    ])
    let metadata = ["format": "pt", "author": "SegKit ✓", "quote": "\"\\"]
    let file = try temporaryFolder().appendingPathComponent("segkit.safetensors")
    try stateDict.save(to: file, metadata: metadata)

    let bytes = try Data(contentsOf: file)
    let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
    XCTAssertEqual(headerLength % 8, 0, "the header is padded to 8 bytes")

    let output = try Oracle.run("""
      import json, sys, torch
      from safetensors import safe_open
      from safetensors.torch import load_file
      with safe_open(sys.argv[1], 'pt') as f:
          metadata = f.metadata()
      tensors = load_file(sys.argv[1])
      print(json.dumps({'metadata': metadata, 'tensors': {
          k: {'dtype': str(v.dtype).removeprefix('torch.'), 'shape': list(v.shape),
              'hex': v.reshape(-1).view(torch.uint8).numpy().tobytes().hex()} for k, v in tensors.items()}}))
      """, arguments: [file.path])
    struct Report: Decodable {
      let metadata: [String: String]
      let tensors: [String: PythonTensor]
    }
    let report = try JSONDecoder().decode(Report.self, from: Data(output.utf8))
    XCTAssertEqual(report.metadata, metadata)
    XCTAssertEqual(Set(report.tensors.keys), Set(stateDict.names))
    for (name, tensor) in stateDict {
      guard let python = report.tensors[name] else { continue }
      XCTAssertEqual(python.dtype, tensor.dtype.description, name)
      XCTAssertEqual(python.shape, tensor.shape, name)
      XCTAssertEqual(python.hex, hex(try tensor.data()), name)
    }

    let (reread, rereadMetadata) = try SafeTensors.read(contentsOf: file)
    XCTAssertEqual(rereadMetadata, metadata)
    try assertSameTensors(reread, stateDict, order: stateDict.names)
  }

  func testSafeTensorsWrittenByPythonReadBySegKit() throws {
    let (folder, report) = try fixtures()
    let (stateDict, metadata) = try SafeTensors.read(contentsOf: folder.appendingPathComponent("python.safetensors"))
    XCTAssertEqual(metadata, report.pythonMetadata)
    XCTAssertEqual(Set(stateDict.names), Set(report.pythonTensors.keys))
    for (name, python) in report.pythonTensors {
      guard let tensor = stateDict[name] else { continue }
      XCTAssertEqual(tensor.dtype.description, python.dtype, name)
      XCTAssertEqual(tensor.shape, python.shape, name)
      XCTAssertEqual(hex(try tensor.data()), python.hex, name)
    }
    // Sniffed by content: the same file under another extension loads the same way.
    let renamed = try temporaryFolder().appendingPathComponent("weights.bin")
    try FileManager.default.copyItem(at: folder.appendingPathComponent("python.safetensors"), to: renamed)
    try assertSameTensors(try StateDict.load(contentsOf: renamed), stateDict, order: stateDict.names)
  }

  func testInvalidSafeTensorsAreRejected() throws {
    let folder = try temporaryFolder()
    func file(header: String, dataBytes: Int, declaredLength: UInt64? = nil) -> Data {
      var length = (declaredLength ?? UInt64(header.utf8.count)).littleEndian
      return Data(bytes: &length, count: 8) + Data(header.utf8) + Data(count: dataBytes)
    }
    let cases: [(String, Data, String)] = [
      ("length", file(header: "{}", dataBytes: 0, declaredLength: 1_000_000), "beyond the end of the file"),
      ("json", file(header: "{\"a\": [", dataBytes: 0), "malformed header"),
      ("dtype", file(header: #"{"a":{"dtype":"X9","shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 4), "unsupported dtype 'X9'"),
      ("range", file(header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, dataBytes: 8), "outside the 8-byte data section"),
      ("overlap", file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
                       dataBytes: 12), "overlaps"),
      ("size", file(header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8), "needs 12"),
      ("hole", file(header: #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#, dataBytes: 4), "hole"),
      ("trailing", file(header: #"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#, dataBytes: 5), "3 bytes after the last tensor"),
      ("shape", file(header: #"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}"#, dataBytes: 0), "negative dimension"),
      ("metadata", file(header: #"{"__metadata__":{"a":1}}"#, dataBytes: 0), "malformed header"),
    ]
    for (name, bytes, expected) in cases {
      let url = folder.appendingPathComponent("\(name).safetensors")
      try bytes.write(to: url)
      assertWeightFileError(try StateDict.load(contentsOf: url), file: url, mentions: expected)
    }
  }

  // MARK: PyTorch checkpoints

  func testCheckpointsWithViewsAndEveryDType() throws {
    let (folder, report) = try fixtures()
    let expected = try StateDict.load(contentsOf: folder.appendingPathComponent("mixed.safetensors"))
    for name in ["mixed.pth", "mixed_legacy.pth", "mixed_protocol4.pth", "mixed_protocol4_legacy.pth"] {
      let loaded = try StateDict.load(contentsOf: folder.appendingPathComponent(name))
      try assertSameTensors(loaded, expected, order: report.mixedOrder, name)
      // Views are loaded as contiguous tensors of their own.
      XCTAssertTrue(loaded.allSatisfy { $0.tensor.isContiguous }, name)
    }
  }

  func testResNet18StateDict() throws {
    let (folder, report) = try fixtures()
    let expected = try StateDict.load(contentsOf: folder.appendingPathComponent("resnet18.safetensors"))
    XCTAssertEqual(expected.count, 122)
    for name in ["resnet18.pth", "resnet18_legacy.pth"] {
      try assertSameTensors(try StateDict.load(contentsOf: folder.appendingPathComponent(name)), expected,
                            order: report.resnet18Order, name)
    }
  }

  func testTrainingCheckpointYieldsItsStateDict() throws {
    let (folder, report) = try fixtures()
    let expected = try StateDict.load(contentsOf: folder.appendingPathComponent("checkpoint.safetensors"))
    for name in ["checkpoint.pth", "checkpoint_legacy.pth"] {
      try assertSameTensors(try StateDict.load(contentsOf: folder.appendingPathComponent(name)), expected,
                            order: report.checkpointOrder, name)
    }
    let ambiguous = folder.appendingPathComponent("ambiguous.pth")
    assertWeightFileError(try StateDict.load(contentsOf: ambiguous), file: ambiguous, mentions: "'ema', 'student'")
  }

  func testBigEndianCheckpoint() throws {
    let (folder, report) = try fixtures()
    let expected = try StateDict.load(contentsOf: folder.appendingPathComponent("big_endian.safetensors"))
    try assertSameTensors(try StateDict.load(contentsOf: folder.appendingPathComponent("big_endian.pth")), expected,
                          order: report.bigEndianOrder)
  }

  func testMaliciousPicklesAreRefusedWithoutRunningCode() throws {
    let (folder, _) = try fixtures()
    // Protocol 2 pickles spell builtins the Python 2 way.
    for (name, global) in [("evil_system.pth", "posix.system"), ("evil_system_legacy.pth", "posix.system"),
                           ("evil_eval.pth", "__builtin__.eval")] {
      let url = folder.appendingPathComponent(name)
      assertWeightFileError(try StateDict.load(contentsOf: url), file: url, mentions: "refusing global '\(global)'")
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: folder.appendingPathComponent("marker").path))
  }

  func testCorruptFilesThrowClearErrors() throws {
    let (folder, _) = try fixtures()
    let scratch = try temporaryFolder()
    func write(_ name: String, _ bytes: Data) throws -> URL {
      let url = scratch.appendingPathComponent(name)
      try bytes.write(to: url)
      return url
    }
    let zip = try Data(contentsOf: folder.appendingPathComponent("mixed.pth"))
    let legacy = try Data(contentsOf: folder.appendingPathComponent("mixed_legacy.pth"))
    let safetensors = try Data(contentsOf: folder.appendingPathComponent("mixed.safetensors"))
    var generator = SplitMix(seed: 42)
    let randomBytes = Data((0..<4096).map { _ in UInt8(truncatingIfNeeded: generator.next()) })

    let cases: [(URL, String)] = [
      (try write("empty.pth", Data()), "empty"),
      (try write("random.pth", randomBytes), "not a weight file"),
      (try write("half_zip.pth", zip.prefix(zip.count / 2)), "not a complete zip archive: no end record"),
      (try write("legacy_pickle_cut.pth", legacy.prefix(300)), "truncated"),
      (try write("legacy_data_cut.pth", legacy.dropLast(10)), "truncated"),
      (try write("safetensors_cut.safetensors", safetensors.dropLast(5)), "outside"),
      (folder.appendingPathComponent("no_pickle.pth"), "without data.pkl"),
      (folder.appendingPathComponent("bad_checksum.pth"), "checksum"),
    ]
    for (url, expected) in cases {
      assertWeightFileError(try StateDict.load(contentsOf: url), file: url, mentions: expected)
    }
  }

  /// Hand-made legacy files whose pickles are well-formed but hostile.
  func testHostilePicklesAreRejected() throws {
    let folder = try temporaryFolder()
    func legacyFile(_ name: String, object: PickleBytes, keys: PickleBytes = PickleBytes().op(0x5D), storages: Data = Data()) throws -> URL {
      let url = folder.appendingPathComponent(name)
      let magic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]
      let header = magic + PickleBytes().op(0x4D).raw([0xE9, 0x03]).stop() + PickleBytes().op(0x7D).stop()
      try (Data(header + object.stop() + keys.stop()) + storages).write(to: url)
      return url
    }
    // {'w': _rebuild_tensor_v2(storage of 4 floats, 0, (9,), (1,), False, {})}
    let beyond = PickleBytes().op(0x7D).string("w").global("torch._utils", "_rebuild_tensor_v2")
      .op(0x28).op(0x28).string("storage").global("torch", "FloatStorage").string("0").string("cpu").int(4).op(0x74).op(0x51)
      .int(0).int(9).op(0x85).int(1).op(0x85).op(0x89).op(0x7D).op(0x74).op(0x52).op(0x73)
    var storage = Data([4, 0, 0, 0, 0, 0, 0, 0])
    storage.append(Data(count: 16))
    let keys = PickleBytes().op(0x5D).string("0").op(0x61)
    let deeplyNested = PickleBytes().op(0x4E).repeated(0x85, 200_000)
    let cases: [(URL, String)] = [
      (try legacyFile("beyond.pth", object: beyond, keys: keys, storages: storage), "reaches beyond the storage's 4 elements"),
      (try legacyFile("nested.pth", object: deeplyNested), "holds a tuple"),
      (try legacyFile("memo.pth", object: PickleBytes().op(0x68).raw([5])), "memo entry 5 is missing"),
      (try legacyFile("underflow.pth", object: PickleBytes().op(0x73)), "stack underflow"),
      (try legacyFile("opcode.pth", object: PickleBytes().op(0xFF)), "unsupported pickle opcode 0xff"),
      (try legacyFile("module.pth", object: PickleBytes().global("torch.nn", "Linear")), "refusing global 'torch.nn.Linear'"),
    ]
    for (url, expected) in cases {
      assertWeightFileError(try StateDict.load(contentsOf: url), file: url, mentions: expected)
    }
  }

  /// Bombs and traps of the zip format and of views: each refused with a clear error
  /// before anything large is allocated.
  func testZipAndViewBombsAreRefused() throws {
    let folder = try temporaryFolder()
    func le<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.littleEndian, Array.init) }
    // A local header, then a ZIP64 end record whose central directory lies at 2^63 (ZIPFoundation trapped on it).
    let local: [UInt8] = [0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 26)
    let zip64End = le(UInt32(0x0606_4B50)) + le(UInt64(44)) + le(UInt16(45)) + le(UInt16(45)) + le(UInt32(0)) + le(UInt32(0))
      + le(UInt64(1)) + le(UInt64(1)) + le(UInt64(46)) + le(UInt64(1) << 63)
    let locator = le(UInt32(0x0706_4B50)) + le(UInt32(0)) + le(UInt64(local.count)) + le(UInt32(1))
    let end = le(UInt32(0x0605_4B50)) + [UInt8](repeating: 0, count: 4) + le(UInt16(0xFFFF)) + le(UInt16(0xFFFF))
      + le(UInt32(0xFFFF_FFFF)) + le(UInt32(0xFFFF_FFFF)) + le(UInt16(0))
    let zip64 = folder.appendingPathComponent("zip64.pth")
    try Data(local + zip64End + locator + end).write(to: zip64)
    assertWeightFileError(try StateDict.load(contentsOf: zip64), file: zip64, mentions: "lies outside the")

    // A download cut off before the zip's end: refused from the last 64 KiB, without a scan of the whole file.
    let cut = folder.appendingPathComponent("cut.pth")
    try Data(local + [UInt8](repeating: 0, count: 20 << 20)).write(to: cut)
    assertWeightFileError(try StateDict.load(contentsOf: cut), file: cut, mentions: "no end record in its last 65557 bytes")

    // data.pkl compressed, its stated size raised to 2 GiB, or lowered below what it inflates to.
    try Oracle.run("""
      import sys, zipfile, pickle, struct
      folder = sys.argv[1]
      for name, stated in (("huge", 1 << 31), ("liar", 10)):
          path = f"{folder}/{name}.pth"
          with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
              archive.writestr("archive/data.pkl", pickle.dumps({"w": list(range(5000))}, protocol=2))
          data = bytearray(open(path, "rb").read())
          central = data.rfind(b"PK\\x01\\x02")
          data[central + 24:central + 28] = struct.pack("<I", stated)
          local = data.find(b"PK\\x03\\x04")
          data[local + 22:local + 26] = struct.pack("<I", stated)
          open(path, "wb").write(data)
      """, arguments: [folder.path])
    let huge = folder.appendingPathComponent("huge.pth"), liar = folder.appendingPathComponent("liar.pth")
    assertWeightFileError(try StateDict.load(contentsOf: huge), file: huge, mentions: "inflates to 2147483648 bytes, more than the limit")
    assertWeightFileError(try StateDict.load(contentsOf: liar), file: liar, mentions: "inflates past its stated 10 bytes")

    // A legacy file of 4 stored floats viewed as 2^30 elements of stride 0 (4 GiB once materialised).
    let magic: [UInt8] = [0x80, 0x02, 0x8A, 0x0A, 0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19, 0x2E]
    let header = magic + PickleBytes().op(0x4D).raw([0xE9, 0x03]).stop() + PickleBytes().op(0x7D).stop()
    let expanded = PickleBytes().op(0x7D).string("w").global("torch._utils", "_rebuild_tensor_v2")
      .op(0x28).op(0x28).string("storage").global("torch", "FloatStorage").string("0").string("cpu").int(4).op(0x74).op(0x51)
      .int(0).raw([0x4A] + le(Int32(1 << 30))).op(0x85).int(0).op(0x85).op(0x89).op(0x7D).op(0x74).op(0x52).op(0x73)
    let stride0 = folder.appendingPathComponent("stride0.pth")
    try (Data(header + expanded.stop() + PickleBytes().op(0x5D).string("0").op(0x61).stop()) + Data(le(UInt64(4))) + Data(count: 16))
      .write(to: stride0)
    assertWeightFileError(try StateDict.load(contentsOf: stride0), file: stride0, mentions: "an expanded view larger than 268435456 bytes once materialised")
  }

  // MARK: segkit convert-weights

  // MARK: Helpers

  private func assertSameTensors(_ actual: StateDict, _ expected: StateDict, order: [String], _ label: String = "",
                                 file: StaticString = #filePath, line: UInt = #line) throws {
    XCTAssertEqual(actual.names, order, label, file: file, line: line)
    XCTAssertEqual(Set(expected.names), Set(order), label, file: file, line: line)
    for (name, tensor) in expected {
      guard let loaded = actual[name] else { continue }
      XCTAssertEqual(loaded.dtype, tensor.dtype, "\(label) \(name)", file: file, line: line)
      XCTAssertEqual(loaded.shape, tensor.shape, "\(label) \(name)", file: file, line: line)
      XCTAssertTrue(try loaded.data() == tensor.data(), "\(label) \(name): values differ", file: file, line: line)
    }
  }

  private func assertWeightFileError<T>(_ expression: @autoclosure () throws -> T, file url: URL, mentions expected: String,
                                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertThrowsError(try expression(), url.lastPathComponent, file: file, line: line) { error in
      guard let error = error as? WeightFileError else {
        return XCTFail("\(url.lastPathComponent): not a WeightFileError: \(error)", file: file, line: line)
      }
      XCTAssertEqual(error.path, url.path, file: file, line: line)
      XCTAssertTrue(error.description.contains(url.path), file: file, line: line)
      XCTAssertTrue(error.problem.contains(expected), "\(url.lastPathComponent): \(error.problem)", file: file, line: line)
    }
  }

  private func hex(_ data: Data) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var text = [UInt8]()
    text.reserveCapacity(data.count * 2)
    for byte in data {
      text.append(digits[Int(byte >> 4)])
      text.append(digits[Int(byte & 0x0F)])
    }
    return String(decoding: text, as: UTF8.self)
  }
}

/// Builds protocol-2 pickles opcode by opcode, for inputs Python would never write.
private struct PickleBytes {
  var bytes: [UInt8] = [0x80, 0x02]

  func op(_ code: UInt8) -> PickleBytes { raw([code]) }
  func raw(_ more: [UInt8]) -> PickleBytes {
    var copy = self
    copy.bytes += more
    return copy
  }
  func repeated(_ code: UInt8, _ count: Int) -> PickleBytes { raw([UInt8](repeating: code, count: count)) }
  func int(_ value: UInt8) -> PickleBytes { raw([0x4B, value]) }
  func string(_ text: String) -> PickleBytes {
    let utf8 = Array(text.utf8)
    return raw([0x58] + withUnsafeBytes(of: UInt32(utf8.count).littleEndian, Array.init) + utf8)
  }
  func global(_ module: String, _ name: String) -> PickleBytes { raw([0x63] + Array("\(module)\n\(name)\n".utf8)) }
  func stop() -> [UInt8] { bytes + [0x2E] }
}

/// A small seeded generator, so that the "random bytes" input is the same on every run.
private struct SplitMix {
  var state: UInt64
  init(seed: UInt64) { state = seed }
  mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE5_E9B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}
