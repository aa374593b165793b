import Foundation

/// Writes TensorBoard event files without TensorFlow: scalars and images that
/// `tensorboard --logdir` shows.
///
/// The file is a TFRecord stream (per record: the length as a little-endian
/// uint64, the masked CRC32C of those 8 bytes, the data, the masked CRC32C of the
/// data) of `Event` protocol buffers encoded by hand. The first event carries
/// file_version "brain.Event:2". Every event is written straight to the file (no
/// buffering in this process), so a crash loses nothing already logged.
public final class TensorBoardWriter {
  public let url: URL
  private let file: FileHandle
  private let lock = NSLock()
  private var isClosed = false

  /// Creates `events.out.tfevents.<seconds>.<host>` in `directory` (created if needed).
  /// When `resumingAt` is given, a session-start event at that step is written too:
  /// TensorBoard then drops the events at or after that step from earlier files,
  /// which a run that crashed after its last checkpoint left behind.
  public init(directory: URL, resumingAt step: Int? = nil) throws {
    do {
      try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    } catch {
      throw TrainingError("cannot create the TensorBoard folder \(directory.path): \(error.localizedDescription)")
    }
    let now = Date()
    let base = "events.out.tfevents.\(Int(now.timeIntervalSince1970)).\(ProcessInfo.processInfo.hostName)"
    // Two writers started within the same second in one folder get distinct files.
    var name = base
    var counter = 1
    while FileManager.default.fileExists(atPath: directory.appendingPathComponent(name).path) {
      name = "\(base).\(counter)"
      counter += 1
    }
    url = directory.appendingPathComponent(name)
    guard FileManager.default.createFile(atPath: url.path, contents: nil),
          let handle = try? FileHandle(forWritingTo: url)
    else { throw TrainingError("cannot create the TensorBoard event file \(url.path)") }
    file = handle
    var event = EventMessage(wallTime: now, step: 0)
    event.fileVersion = "brain.Event:2"
    try write(event)
    if let step {
      var start = EventMessage(wallTime: now, step: step)
      start.sessionStart = true
      try write(start)
    }
  }

  deinit { if !isClosed { try? file.close() } }

  /// One scalar (shown as a curve under `tag`, e.g. "loss/total" or "val/mIoU").
  public func addScalar(_ tag: String, _ value: Double, step: Int, wallTime: Date = Date()) throws {
    try addScalars([(tag, value)], step: step, wallTime: wallTime)
  }

  /// Several scalars of one step, in one event.
  public func addScalars(_ values: [(tag: String, value: Double)], step: Int, wallTime: Date = Date()) throws {
    var event = EventMessage(wallTime: wallTime, step: step)
    event.summaryValues = values.map { SummaryValue(tag: $0.tag, content: .scalar(Float($0.value))) }
    try write(event)
  }

  /// An already encoded PNG (or JPEG) of `channels` channels (1 gray, 3 RGB, 4 RGBA).
  public func addImage(
    _ tag: String, encoded: Data, width: Int, height: Int, channels: Int, step: Int, wallTime: Date = Date()
  ) throws {
    var event = EventMessage(wallTime: wallTime, step: step)
    event.summaryValues = [
      SummaryValue(tag: tag, content: .image(height: height, width: width, colorspace: channels, encoded: encoded)),
    ]
    try write(event)
  }

  /// An image, encoded as PNG.
  public func addImage(_ tag: String, _ image: Image, step: Int, wallTime: Date = Date()) throws {
    try addImage(tag, encoded: try pngData(image), width: image.width, height: image.height,
                 channels: image.channels, step: step, wallTime: wallTime)
  }

  /// Closes the file; later writes are errors.
  public func close() throws {
    lock.lock()
    defer { lock.unlock() }
    guard !isClosed else { return }
    isClosed = true
    try file.synchronize()
    try file.close()
  }

  private func write(_ event: EventMessage) throws {
    let record = TFRecord.frame(event.encoded())
    lock.lock()
    defer { lock.unlock() }
    // Foundation traps on a closed handle rather than throwing.
    guard !isClosed else { throw TrainingError("the TensorBoard event file \(url.path) is closed") }
    do {
      try file.write(contentsOf: record)
    } catch {
      throw TrainingError("cannot write to the TensorBoard event file \(url.path): \(error.localizedDescription)")
    }
  }

  /// PNG bytes through SegKitData's encoder, which writes files only: a temporary file is the go-between.
  private func pngData(_ image: Image) throws -> Data {
    let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-tb-\(UUID().uuidString).png")
    defer { try? FileManager.default.removeItem(at: temporary) }
    try ImageIO.writePNG(image, to: temporary)
    return try Data(contentsOf: temporary)
  }
}

// MARK: - TFRecord framing

enum TFRecord {
  static func frame(_ data: Data) -> Data {
    var length = UInt64(data.count).littleEndian
    let lengthBytes = Data(bytes: &length, count: 8)
    var record = Data(capacity: data.count + 16)
    record.append(lengthBytes)
    appendLittleEndian(&record, CRC32C.masked(lengthBytes))
    record.append(data)
    appendLittleEndian(&record, CRC32C.masked(data))
    return record
  }

  private static func appendLittleEndian(_ data: inout Data, _ value: UInt32) {
    var little = value.littleEndian
    data.append(Data(bytes: &little, count: 4))
  }
}

/// CRC-32C (Castagnoli), the checksum TFRecord uses.
enum CRC32C {
  private static let table: [UInt32] = (0..<256).map { n in
    var c = UInt32(n)
    for _ in 0..<8 { c = c & 1 == 1 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
    return c
  }

  static func checksum(_ data: Data) -> UInt32 {
    var crc: UInt32 = 0xFFFF_FFFF
    for byte in data { crc = table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8) }
    return crc ^ 0xFFFF_FFFF
  }

  /// TensorFlow's masking, so that a CRC of data holding CRCs stays well distributed.
  static func masked(_ data: Data) -> UInt32 {
    let crc = checksum(data)
    return ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
  }
}

// MARK: - Protocol buffers

/// The subset of tensorflow.Event written here (field numbers from event.proto and summary.proto).
struct EventMessage {
  var wallTime: Date
  var step: Int
  var fileVersion: String?
  var sessionStart = false
  var summaryValues: [SummaryValue] = []

  init(wallTime: Date, step: Int) {
    self.wallTime = wallTime
    self.step = step
  }

  func encoded() -> Data {
    var out = ProtoWriter()
    out.double(1, wallTime.timeIntervalSince1970)  // wall_time
    out.varint(2, UInt64(bitPattern: Int64(step)))  // step
    if let fileVersion { out.bytes(3, Data(fileVersion.utf8)) }  // file_version
    if !summaryValues.isEmpty {  // summary: Summary { repeated Value value = 1 }
      var summary = ProtoWriter()
      for value in summaryValues { summary.bytes(1, value.encoded()) }
      out.bytes(5, summary.data)
    }
    if sessionStart {  // session_log = 7: SessionLog { status = 1 (START = 1) }
      var log = ProtoWriter()
      log.varint(1, 1)
      out.bytes(7, log.data)
    }
    return out.data
  }
}

/// tensorflow.Summary.Value with a simple_value or an image.
struct SummaryValue {
  enum Content {
    case scalar(Float)
    case image(height: Int, width: Int, colorspace: Int, encoded: Data)
  }

  var tag: String
  var content: Content

  func encoded() -> Data {
    var out = ProtoWriter()
    out.bytes(1, Data(tag.utf8))  // tag
    switch content {
    case .scalar(let value):
      out.float(2, value)  // simple_value
    case .image(let height, let width, let colorspace, let encoded):
      var image = ProtoWriter()  // Summary.Image
      image.varint(1, UInt64(height))
      image.varint(2, UInt64(width))
      image.varint(3, UInt64(colorspace))
      image.bytes(4, encoded)  // encoded_image_string
      out.bytes(4, image.data)  // image
    }
    return out.data
  }
}

/// Protocol buffer wire format: a key (field number << 3 | wire type), then the value.
struct ProtoWriter {
  private(set) var data = Data()

  private mutating func rawVarint(_ value: UInt64) {
    var v = value
    while v >= 0x80 {
      data.append(UInt8(v & 0x7F) | 0x80)
      v >>= 7
    }
    data.append(UInt8(v))
  }

  private mutating func key(_ field: Int, _ wireType: UInt64) { rawVarint(UInt64(field) << 3 | wireType) }

  mutating func varint(_ field: Int, _ value: UInt64) {
    key(field, 0)
    rawVarint(value)
  }

  mutating func double(_ field: Int, _ value: Double) {
    key(field, 1)
    var bits = value.bitPattern.littleEndian
    data.append(Data(bytes: &bits, count: 8))
  }

  mutating func bytes(_ field: Int, _ value: Data) {
    key(field, 2)
    rawVarint(UInt64(value.count))
    data.append(value)
  }

  mutating func float(_ field: Int, _ value: Float) {
    key(field, 5)
    var bits = value.bitPattern.littleEndian
    data.append(Data(bytes: &bits, count: 4))
  }
}
