import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

/// The YouTube-VOS reader: frames, annotations only where they exist, the objects of
/// meta.json, and hostile files named in clear errors.
final class YouTubeVOSTests: XCTestCase {
  func fixture(_ root: URL) throws -> URL {
    let davis = root.appendingPathComponent("davis")
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames, options.width, options.height) = (0, 1, 4, 32, 24)
    (options.objects, options.seed, options.writeFlow) = (2, 3, false)
    try Synthetic.writeVideo(to: davis, options: options)
    let sequence = try XCTUnwrap(try VideoDataset.davis2017(root: davis, split: "val").sequences.first)
    return try Synthetic.writeYouTubeVOS(from: sequence, to: root.appendingPathComponent("valid"))
  }

  func testReadsVideosObjectsAndTheirFirstFrames() throws {
    let root = try Oracle.temporaryDirectory("youtube-vos")
    defer { try? FileManager.default.removeItem(at: root) }
    let (dataset, objects) = try VideoDataset.youTubeVOS(root: try fixture(root))
    XCTAssertEqual(dataset.sequences.map(\.name), ["v1"])
    let frames = try XCTUnwrap(dataset.sequences.first).frames
    XCTAssertEqual(frames.map { $0.image.lastPathComponent }, ["00000.jpg", "00005.jpg", "00010.jpg", "00015.jpg"])
    XCTAssertEqual(frames.map { $0.label != nil }, [true, false, true, false], "annotations only where an object first appears")
    XCTAssertEqual(objects["v1"], [YouTubeVOSObject(id: 1, category: "blob", firstFrame: "00000"),
                                   YouTubeVOSObject(id: 2, category: "blob", firstFrame: "00010")])
    XCTAssertEqual(try SegmentationDataset.open(.youtubeVOS, root: root.appendingPathComponent("valid")).count, 4)
  }

  func testHostileMetaAndMissingFilesAreNamed() throws {
    let root = try Oracle.temporaryDirectory("youtube-vos")
    defer { try? FileManager.default.removeItem(at: root) }
    let split = try fixture(root), meta = split.appendingPathComponent("meta.json")
    func expect(_ json: String, _ message: String, file: StaticString = #filePath, line: UInt = #line) throws {
      try json.write(to: meta, atomically: true, encoding: .utf8)
      XCTAssertThrowsError(try VideoDataset.youTubeVOS(root: split), file: file, line: line) { error in
        XCTAssertTrue("\(error)".contains(message), "\(message) not in: \(error)", file: file, line: line)
      }
    }
    try expect("{\"videos\": 3}", "not YouTube-VOS's meta.json")
    try expect("not json", "\(meta.path)")
    try expect(#"{"videos": {"../etc": {"objects": {}}}}"#, "not a plain name")
    try expect(#"{"videos": {"v2": {"objects": {}}}}"#, "video 'v2' of meta.json")
    try expect(#"{"videos": {"v1": {"objects": {"0": {"frames": ["00000"]}}}}}"#, "object ids are 1…254")
    try expect(#"{"videos": {"v1": {"objects": {"x": {"frames": ["00000"]}}}}}"#, "object 'x'")
    try expect(#"{"videos": {"v1": {"objects": {"1": {"frames": []}}}}}"#, "lists no frames")
    try expect(#"{"videos": {"v1": {"objects": {"1": {"frames": ["00003"]}}}}}"#, "frame '00003', which is not in")
    try expect(#"{"videos": {"v1": {"objects": {"1": {"frames": ["00005"]}}}}}"#, "00005.png: missing")
    try FileManager.default.removeItem(at: meta)
    XCTAssertThrowsError(try VideoDataset.youTubeVOS(root: split)) { XCTAssertTrue("\($0)".contains("meta.json: missing"), "\($0)") }
  }
}
