import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Finds and runs the ffmpeg command-line tools.
enum FFmpeg {
  /// What ffmpeg may open when reading: local files and pipes, never the network.
  static let protocols = "file,pipe"
  /// Demuxers that read other files or URLs named inside the file; refused.
  static let playlistFormats: Set<String> = ["hls", "applehttp", "dash", "concat", "webm_dash_manifest", "ffconcat"]

  /// The path of `tool` (ffmpeg or ffprobe) on PATH.
  static func locate(_ tool: String) throws -> URL {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    for folder in path.split(separator: ":") {
      let candidate = URL(fileURLWithPath: String(folder)).appendingPathComponent(tool)
      if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
    }
    throw DataError("\(tool) was not found on PATH; video needs ffmpeg (apt-get install ffmpeg, or scripts/setup-system.sh)")
  }

  /// Runs a tool to completion and returns its standard output, or throws with its standard error.
  static func output(_ tool: String, _ arguments: [String], about file: URL) throws -> Data {
    let process = Process()
    process.executableURL = try locate(tool)
    process.arguments = arguments
    let out = Pipe()
    let err = try StderrFile()
    process.standardOutput = out
    process.standardError = err.handle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      throw DataError("\(file.path): \(tool) failed: \(err.text())")
    }
    return data
  }

  /// Whether this ffmpeg has an encoder (e.g. libx264); asked once per name.
  static func hasEncoder(_ name: String) -> Bool {
    encoderCache.withLock { cache in
      if let known = cache[name] { return known }
      let listing = (try? output("ffmpeg", ["-hide_banner", "-encoders"], about: URL(fileURLWithPath: "ffmpeg")))
        .map { String(decoding: $0, as: UTF8.self) } ?? ""
      let found = listing.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first == Substring(name) }
      cache[name] = found
      return found
    }
  }

  private static let encoderCache = Locked([String: Bool]())
}

/// A tiny mutex-guarded value (Foundation's NSLock; Synchronization.Mutex needs newer platforms).
final class Locked<Value>: @unchecked Sendable {
  private var value: Value
  private let lock = NSLock()
  init(_ value: Value) { self.value = value }
  func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
    lock.lock()
    defer { lock.unlock() }
    return try body(&value)
  }
}

/// A child's standard error, kept in a temporary file: unlike a pipe it never
/// fills up and blocks the child while we are busy reading frames. The file is
/// unlinked as soon as it is open, so nothing is left in the temporary folder
/// however the process ends (Ctrl-C, a kill); it lives on through the descriptor.
final class StderrFile {
  let handle: FileHandle

  init() throws {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("segkit-ffmpeg-\(UUID().uuidString).log")
    let descriptor = open(url.path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
    guard descriptor >= 0 else {
      throw DataError("\(url.path): cannot create a log file for ffmpeg (\(String(cString: strerror(errno))))")
    }
    unlink(url.path)
    handle = FileHandle(fileDescriptor: descriptor, closeOnDealloc: true)
  }

  /// What the child wrote (its last 64 KiB), read without moving the shared file offset.
  func text() -> String {
    var status = stat()
    let size = fstat(handle.fileDescriptor, &status) == 0 ? Int(status.st_size) : 0
    let start = max(0, size - (1 << 16))
    var bytes = [UInt8](repeating: 0, count: size - start)
    let count = bytes.withUnsafeMutableBytes { pread(handle.fileDescriptor, $0.baseAddress, $0.count, off_t(start)) }
    let text = String(decoding: bytes.prefix(max(0, count)), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return text.isEmpty ? "no message" : text
  }
}

/// Moves `count` bytes through `transfer` (read or write on a descriptor), retrying
/// calls interrupted by a signal; returns the bytes moved, fewer at end of file or
/// when the other end has gone.
private func transferFully(_ count: Int, _ transfer: (_ done: Int) -> Int) -> Int {
  var done = 0
  while done < count {
    let n = transfer(done)
    if n > 0 {
      done += n
    } else if !(n < 0 && errno == EINTR) {
      break
    }
  }
  return done
}

/// Reads `count` bytes from a file descriptor, fewer only at end of file.
private func readFully(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> Int {
  transferFully(buffer.count) { read(fd, buffer.baseAddress! + $0, buffer.count - $0) }
}

/// Writes all of `buffer` to a file descriptor; false when the reader has gone.
private func writeFully(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Bool {
  transferFully(buffer.count) { write(fd, buffer.baseAddress! + $0, buffer.count - $0) } == buffer.count
}

/// Decodes a video file's frames in order, as RGB images, through ffmpeg.
///
/// Size, frame rate and frame count come from ffprobe when the reader opens,
/// before any frame is decoded. Not thread-safe.
public final class VideoReader {
  public let url: URL
  public let width: Int
  public let height: Int
  /// Frames per second (the stream's average rate).
  public let fps: Double
  /// Frames in the stream: the container's count, or a count of the stream's
  /// packets when the container has none (MXF, some AVI and MKV files).
  public let frameCount: Int
  /// Seconds, when the container says.
  public let duration: Double?

  private var process: Process?
  private var stdout: FileHandle?
  private var stderr: StderrFile?
  private var finished = false
  /// Frames returned so far.
  public private(set) var position = 0

  public init(_ url: URL) throws {
    guard FileManager.default.fileExists(atPath: url.path) else { throw DataError("\(url.path): no such file") }
    self.url = url
    CommandInputs.note(url)
    let probe = try Self.probe(url, countPackets: false)
    guard let w = probe.width, let h = probe.height, w > 0, h > 0 else {
      throw DataError("\(url.path): no video stream with a known size")
    }
    guard w <= Image.maximumSide, h <= Image.maximumSide, w * h <= Image.maximumPixels else {
      throw DataError("\(url.path): \(w)×\(h) frames are over the limit of \(Image.maximumPixels) pixels")
    }
    let rotated = probe.rotation.map { abs(Int($0.truncatingRemainder(dividingBy: 360).rounded())) % 180 == 90 } ?? false
    (width, height) = rotated ? (h, w) : (w, h)
    fps = probe.fps ?? 0
    duration = probe.duration
    if let n = probe.frames {
      frameCount = n
    } else {
      frameCount = try Self.probe(url, countPackets: true).frames ?? 0
    }
  }

  deinit { stop() }

  /// The next frame, or nil after the last one.
  public func next() throws -> Image? {
    if finished { return nil }
    if process == nil { try start() }
    var image = Image(width: width, height: height, channels: 3)
    let expected = image.pixels.count
    let got = image.pixels.withUnsafeMutableBytes { readFully(stdout!.fileDescriptor, into: $0) }
    if got == expected {
      position += 1
      return image
    }
    finished = true
    process!.waitUntilExit()
    let status = process!.terminationStatus
    let message = stderr!.text()
    stop()
    if status != 0 { throw DataError("\(url.path): ffmpeg failed after \(position) frames: \(message)") }
    if got != 0 { throw DataError("\(url.path): the last frame is incomplete (\(got) of \(expected) bytes)") }
    return nil
  }

  /// Every remaining frame.
  public func readAll() throws -> [Image] {
    var frames: [Image] = []
    while let frame = try next() { frames.append(frame) }
    return frames
  }

  /// Stops decoding; later calls to `next` return nil.
  public func close() {
    finished = true
    stop()
  }

  private func start() throws {
    let process = Process()
    process.executableURL = try FFmpeg.locate("ffmpeg")
    process.arguments = [
      "-nostdin", "-hide_banner", "-loglevel", "error", "-protocol_whitelist", FFmpeg.protocols, "-i", url.path,
      "-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]
    let out = Pipe()
    let err = try StderrFile()
    process.standardOutput = out
    process.standardError = err.handle
    process.standardInput = FileHandle.nullDevice
    try process.run()
    self.process = process
    self.stdout = out.fileHandleForReading
    self.stderr = err
  }

  private func stop() {
    // Our end of the pipe closes first: ffmpeg blocked writing into a full pipe (a
    // reader stopped early) then fails with EPIPE instead of waiting forever.
    try? stdout?.close()
    if let process, process.isRunning {
      process.terminate()
      process.waitUntilExit()
    }
    process = nil
    stdout = nil
    stderr = nil
  }

  private struct Probe {
    var width, height, frames: Int?
    var fps, duration, rotation: Double?
  }

  private static func probe(_ url: URL, countPackets: Bool) throws -> Probe {
    let entries = countPackets
      ? "stream=nb_read_packets"
      : "stream=width,height,nb_frames,avg_frame_rate,r_frame_rate,duration:stream_tags=rotate:stream_side_data=rotation:format=duration,format_name"
    let data = try FFmpeg.output(
      "ffprobe",
      ["-v", "error", "-protocol_whitelist", FFmpeg.protocols, "-select_streams", "v:0"] + (countPackets ? ["-count_packets"] : [])
        + ["-show_entries", entries, "-of", "json", url.path],
      about: url)
    guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
      throw DataError("\(url.path): ffprobe's answer is not JSON")
    }
    guard let stream = (json["streams"] as? [[String: Any]])?.first else {
      throw DataError("\(url.path): no video stream")
    }
    func number(_ value: Any?) -> Double? {
      switch value {
      case let n as NSNumber: return n.doubleValue
      case let s as String:
        let parts = s.split(separator: "/")
        if parts.count == 2, let a = Double(parts[0]), let b = Double(parts[1]) { return b == 0 ? nil : a / b }
        return Double(s)
      default: return nil
      }
    }
    // Numbers from the file: anything not finite or implausibly large is unknown (Int(_:) would trap).
    func whole(_ value: Any?) -> Int? { number(value).flatMap { $0.isFinite && abs($0) < 1e12 ? Int($0) : nil } }
    let format = ((json["format"] as? [String: Any])?["format_name"] as? String) ?? ""
    if let playlist = format.split(separator: ",").first(where: { FFmpeg.playlistFormats.contains(String($0)) }) {
      throw DataError("\(url.path): a \(playlist) playlist, not a video file; playlists are not followed")
    }
    var probe = Probe()
    probe.width = whole(stream["width"])
    probe.height = whole(stream["height"])
    probe.frames = whole(stream[countPackets ? "nb_read_packets" : "nb_frames"]).flatMap { $0 > 0 ? $0 : nil }
    probe.fps = [number(stream["avg_frame_rate"]), number(stream["r_frame_rate"])].compactMap { $0 }.first { $0 > 0 }
    probe.duration = number(stream["duration"]) ?? number((json["format"] as? [String: Any])?["duration"])
    let sideData = (stream["side_data_list"] as? [[String: Any]]) ?? []
    probe.rotation = (sideData.compactMap { number($0["rotation"]) }.first
      ?? number((stream["tags"] as? [String: Any])?["rotate"])).flatMap { $0.isFinite ? $0 : nil }
    return probe
  }
}

/// Encodes RGB frames into a video file through ffmpeg.
public final class VideoWriter {
  public enum Codec: Sendable {
    /// H.264 (libx264) when this ffmpeg has it, else MPEG-4 part 2; yuv420p.
    case h264
    /// MPEG-4 part 2; yuv420p.
    case mpeg4
    /// Motion JPEG.
    case mjpeg
    /// FFV1, lossless RGB: frames read back exactly (.avi or .mkv).
    case ffv1
  }

  public let url: URL
  public let width: Int
  public let height: Int
  public let fps: Double
  /// Frames written so far.
  public private(set) var frameCount = 0

  private let process: Process
  private let stdin: FileHandle
  private let stderr: StderrFile
  private var finished = false
  /// Where ffmpeg writes until `finish` moves the complete file to `url`: an
  /// interrupted or failed video never stands under the final name.
  private let partial: URL

  /// Starts ffmpeg writing `url`. The codec defaults to H.264 for .mp4/.mov,
  /// FFV1 for .mkv and MPEG-4 for the rest (.avi). Codecs stored as yuv420p
  /// need even sizes, so an odd width or height gets one padding column or row.
  public init(url: URL, width: Int, height: Int, fps: Double, codec: Codec? = nil, quality: Int = 23) throws {
    guard width > 0, height > 0, fps > 0 else {
      throw DataError("\(url.path): a video needs a positive size and frame rate, not \(width)x\(height) at \(fps) fps")
    }
    try AtomicFile.checkDestination(url)
    self.url = url
    self.width = width
    self.height = height
    self.fps = fps
    // The extension stays last: ffmpeg picks the container by it.
    partial = url.deletingLastPathComponent()
      .appendingPathComponent(".\(url.deletingPathExtension().lastPathComponent).partial.\(url.pathExtension)")
    let ext = url.pathExtension.lowercased()
    let chosen = codec ?? (["mp4", "mov", "m4v"].contains(ext) ? .h264 : ext == "mkv" ? .ffv1 : .mpeg4)
    var encode: [String]
    switch chosen {
    case .h264 where FFmpeg.hasEncoder("libx264"):
      encode = ["-c:v", "libx264", "-preset", "medium", "-crf", "\(quality)", "-pix_fmt", "yuv420p"]
    case .h264, .mpeg4:
      // q:v 2–31, lower is better: map the CRF-like quality onto it.
      encode = ["-c:v", "mpeg4", "-q:v", "\(max(2, min(31, quality / 4)))", "-pix_fmt", "yuv420p"]
    case .mjpeg:
      encode = ["-c:v", "mjpeg", "-q:v", "\(max(2, min(31, quality / 4)))", "-pix_fmt", "yuvj420p"]
    case .ffv1:
      encode = ["-c:v", "ffv1", "-pix_fmt", "bgr0"]
    }
    if chosen != .ffv1 && (width % 2 == 1 || height % 2 == 1) {
      encode += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]
    }
    if ["mp4", "mov", "m4v"].contains(ext) { encode += ["-movflags", "+faststart"] }

    // A write to a pipe whose reader died raises SIGPIPE, which would kill this
    // process; ignored, the write fails with EPIPE and becomes an error instead.
    signal(SIGPIPE, SIG_IGN)
    process = Process()
    process.executableURL = try FFmpeg.locate("ffmpeg")
    process.arguments = [
      "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
      "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "\(width)x\(height)", "-framerate", String(fps), "-i", "pipe:0",
    ] + encode + [partial.path]
    let input = Pipe()
    stderr = try StderrFile()
    process.standardInput = input
    process.standardOutput = FileHandle.nullDevice
    process.standardError = stderr.handle
    try process.run()
    stdin = input.fileHandleForWriting
    PartialFiles.register(partial)
  }

  deinit {
    if !finished {
      try? stdin.close()
      process.waitUntilExit()
      try? FileManager.default.removeItem(at: partial)
    }
    PartialFiles.unregister(partial)
  }

  /// Appends a frame (RGB, or gray/RGBA converted) of the writer's size.
  public func write(_ frame: Image) throws {
    guard !finished else { throw DataError("\(url.path): the video is already finished") }
    guard frame.width == width, frame.height == height else {
      throw DataError("\(url.path): frame \(frameCount) is \(frame.width)x\(frame.height), the video \(width)x\(height)")
    }
    let rgb = frame.rgb()
    let ok = rgb.pixels.withUnsafeBytes { writeFully(stdin.fileDescriptor, $0) }
    guard ok else {
      finished = true
      try? stdin.close()
      process.waitUntilExit()
      try? FileManager.default.removeItem(at: partial)
      throw DataError("\(url.path): ffmpeg stopped accepting frames: \(stderr.text())")
    }
    frameCount += 1
  }

  /// Closes the stream and waits for ffmpeg to finish the file.
  public func finish() throws {
    guard !finished else { return }
    finished = true
    defer { PartialFiles.unregister(partial) }
    try? stdin.close()
    process.waitUntilExit()
    guard process.terminationStatus == 0 else {
      try? FileManager.default.removeItem(at: partial)
      throw DataError("\(url.path): ffmpeg failed writing the video: \(stderr.text())")
    }
    do { try AtomicFile.place(partial, at: url) } catch {
      throw DataError("\(url.path): the finished video cannot be moved into place (\(error.localizedDescription))")
    }
  }
}

extension Image {
  /// The image as 3-channel RGB: gray replicated, alpha dropped.
  public func rgb() -> Image {
    switch channels {
    case 3: return self
    case 4: return droppingAlpha()
    default:
      var out = Image(width: width, height: height, channels: 3)
      for (i, v) in pixels.enumerated() {
        out.pixels[3 * i] = v
        out.pixels[3 * i + 1] = v
        out.pixels[3 * i + 2] = v
      }
      return out
    }
  }
}
