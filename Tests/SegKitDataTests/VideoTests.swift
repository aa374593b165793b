import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

final class VideoTests: XCTestCase {
  private var folder: URL!

  override func setUpWithError() throws {
    folder = try Oracle.temporaryDirectory("segkit-video")
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: folder)
  }

  /// A small moving pattern, different in every frame.
  private func frame(_ t: Int, width: Int, height: Int) -> Image {
    var image = Image(width: width, height: height, channels: 3)
    for y in 0..<height {
      for x in 0..<width {
        image[x, y, 0] = UInt8((x * 8 + t * 5) % 256)
        image[x, y, 1] = UInt8((y * 10) % 256)
        image[x, y, 2] = ((x + t) / 4 + y / 4) % 2 == 0 ? 40 : 220
      }
    }
    return image
  }

  /// Smooth content, as lossy codecs with 4:2:0 chroma expect.
  private func smoothFrame(_ t: Int, width: Int, height: Int) -> Image {
    var image = Image(width: width, height: height, channels: 3)
    for y in 0..<height {
      for x in 0..<width {
        let (u, v) = (Double(x + t), Double(y))
        image[x, y, 0] = UInt8(128 + 80 * sin(u * 0.15))
        image[x, y, 1] = UInt8(128 + 80 * cos(v * 0.2))
        image[x, y, 2] = UInt8(128 + 60 * sin((u + v) * 0.1))
      }
    }
    return image
  }

  func testLosslessRoundTripWithOddSize() throws {
    let url = folder.appendingPathComponent("clip.avi")
    let frames = (0..<7).map { frame($0, width: 33, height: 21) }
    let writer = try VideoWriter(url: url, width: 33, height: 21, fps: 12, codec: .ffv1)
    for f in frames { try writer.write(f) }
    try writer.finish()
    XCTAssertEqual(writer.frameCount, 7)

    let reader = try VideoReader(url)
    XCTAssertEqual(reader.frameCount, 7)
    XCTAssertEqual(reader.fps, 12, accuracy: 1e-6)
    XCTAssertEqual([reader.width, reader.height], [33, 21])
    let read = try reader.readAll()
    XCTAssertEqual(read.count, 7)
    XCTAssertEqual(read, frames)
    XCTAssertNil(try reader.next())
  }

  func testLossyMP4() throws {
    let url = folder.appendingPathComponent("clip.mp4")
    let writer = try VideoWriter(url: url, width: 32, height: 24, fps: 25, quality: 18)
    for t in 0..<10 { try writer.write(smoothFrame(t, width: 32, height: 24)) }
    try writer.finish()
    let reader = try VideoReader(url)
    XCTAssertEqual([reader.frameCount, reader.width, reader.height], [10, 32, 24])
    XCTAssertEqual(reader.fps, 25, accuracy: 1e-6)
    var t = 0
    while let decoded = try reader.next() {
      let original = smoothFrame(t, width: 32, height: 24)
      let error = zip(decoded.pixels, original.pixels).map { abs(Double($0) - Double($1)) }.reduce(0, +)
        / Double(original.pixels.count)
      XCTAssertLessThan(error, 4, "frame \(t)")
      t += 1
    }
    XCTAssertEqual(t, 10)
  }

  /// MXF has no frame count in its header: the reader counts packets instead.
  func testMXFFromFFmpegAndStoppingEarly() throws {
    let url = folder.appendingPathComponent("clip.mxf")
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=48x32:rate=25",
                         "-frames:v", "15", "-c:v", "mpeg2video", url.path]
    try process.run()
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0)
    let reader = try VideoReader(url)
    XCTAssertEqual([reader.frameCount, reader.width, reader.height], [15, 48, 32])
    XCTAssertEqual(reader.fps, 25, accuracy: 1e-6)
    XCTAssertNotNil(try reader.next())
    reader.close()
    XCTAssertNil(try reader.next())
  }

  func testErrors() throws {
    XCTAssertThrowsError(try VideoReader(folder.appendingPathComponent("none.mp4"))) {
      XCTAssertTrue("\($0)".contains("none.mp4"), "\($0)")
    }
    let junk = folder.appendingPathComponent("junk.avi")
    try Data(repeating: 7, count: 300).write(to: junk)
    XCTAssertThrowsError(try VideoReader(junk)) { XCTAssertTrue("\($0)".contains("junk.avi"), "\($0)") }
    let writer = try VideoWriter(url: folder.appendingPathComponent("w.avi"), width: 8, height: 8, fps: 5)
    XCTAssertThrowsError(try writer.write(Image(width: 4, height: 8, channels: 3)))
    try writer.finish()

    let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
    setenv("PATH", folder.path, 1)
    defer { setenv("PATH", path, 1) }
    XCTAssertThrowsError(try VideoReader(folder.appendingPathComponent("w.avi"))) {
      XCTAssertTrue("\($0)".contains("ffprobe was not found"), "\($0)")
    }
  }

  /// Hostile and interrupted videos: a playlist named .mp4 is refused without following
  /// it; a writer stopped before `finish` leaves nothing under the final name, and a
  /// finished one leaves no partial file behind.
  func testPlaylistsAndPartialWrites() throws {
    let clip = folder.appendingPathComponent("clip.mp4")
    let writer = try VideoWriter(url: clip, width: 32, height: 24, fps: 10)
    for t in 0..<3 { try writer.write(frame(t, width: 32, height: 24)) }
    XCTAssertFalse(FileManager.default.fileExists(atPath: clip.path), "nothing under the final name before finish")
    try writer.finish()
    XCTAssertEqual(try VideoReader(clip).frameCount, 3)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["clip.mp4"])

    let playlist = folder.appendingPathComponent("trap.mp4")
    try "#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\nclip.mp4\n#EXT-X-ENDLIST\n".write(to: playlist, atomically: true, encoding: .utf8)
    XCTAssertThrowsError(try VideoReader(playlist)) { XCTAssertTrue("\($0)".contains("trap.mp4"), "\($0)") }

    let abandoned = folder.appendingPathComponent("abandoned.mp4")
    do {
      let unfinished = try VideoWriter(url: abandoned, width: 32, height: 24, fps: 10)
      try unfinished.write(frame(0, width: 32, height: 24))
    }
    XCTAssertFalse(FileManager.default.fileExists(atPath: abandoned.path))
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted(), ["clip.mp4", "trap.mp4"])
  }
}
