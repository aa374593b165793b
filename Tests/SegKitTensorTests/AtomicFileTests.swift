import Foundation
import SegKitTensor
import SegKitTestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// `AtomicFile`, the one way SegKit writes a file: a command's inputs are never its
/// outputs (same path, symbolic link or hard link); devices and FIFOs are written
/// into, never renamed over; a folder is refused; nothing partial is left behind.
final class AtomicFileTests: XCTestCase {
  var folder: URL!

  override func setUpWithError() throws { folder = try Oracle.temporaryDirectory("segkit-atomic") }

  override func tearDownWithError() throws {
    CommandInputs.track(false)
    try? FileManager.default.removeItem(at: folder)
  }

  func testAnInputIsNeverAnOutputWhileACommandTracksThem() throws {
    let input = folder.appendingPathComponent("weights.safetensors")
    try StateDict([("w", try Tensor([1, 2], shape: [2]))]).save(to: input)
    let original = try Data(contentsOf: input)
    // A library caller may read a file and write it back.
    _ = try StateDict.load(contentsOf: input)
    try AtomicFile.write(original, to: input)

    CommandInputs.track()
    _ = try StateDict.load(contentsOf: input)
    let hard = folder.appendingPathComponent("hard.safetensors"), soft = folder.appendingPathComponent("soft.safetensors")
    try FileManager.default.linkItem(at: input, to: hard)
    try FileManager.default.createSymbolicLink(at: soft, withDestinationURL: input)
    for target in [input, hard, soft] {
      XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: target), target.lastPathComponent) { error in
        XCTAssertTrue("\(error)".contains("is one of this command's inputs"), "\(error)")
      }
    }
    XCTAssertEqual(try Data(contentsOf: input), original)
    // A new file at the input's name (the input removed) is not the input any more.
    try FileManager.default.removeItem(at: input)
    try FileManager.default.removeItem(at: soft)
    try AtomicFile.write(Data("new".utf8), to: input)
    XCTAssertEqual(try Data(contentsOf: input), Data("new".utf8))
    XCTAssertEqual(Set(try FileManager.default.contentsOfDirectory(atPath: folder.path)), ["weights.safetensors", "hard.safetensors"],
                   "nothing partial is left")
  }

  func testDevicesAndFIFOsAreWrittenIntoAndFoldersRefused() throws {
    try AtomicFile.write(Data("discarded".utf8), to: URL(fileURLWithPath: "/dev/null"))
    var info = stat()
    XCTAssertEqual(stat("/dev/null", &info), 0)
    XCTAssertEqual(info.st_mode & S_IFMT, S_IFCHR, "/dev/null is still the device")

    let fifo = folder.appendingPathComponent("pipe")
    XCTAssertEqual(mkfifo(fifo.path, 0o600), 0)
    XCTAssertThrowsError(try AtomicFile.write(Data("x".utf8), to: fifo)) { error in
      XCTAssertTrue("\(error)".contains("a FIFO that nobody reads"), "\(error)")
    }
    let reader = open(fifo.path, O_RDONLY | O_NONBLOCK)
    XCTAssertGreaterThanOrEqual(reader, 0)
    defer { close(reader) }
    try AtomicFile.write(Data("through".utf8), to: fifo)
    var buffer = [UInt8](repeating: 0, count: 16)
    let count = read(reader, &buffer, buffer.count)
    XCTAssertEqual(String(decoding: buffer.prefix(max(0, count)), as: UTF8.self), "through")
    XCTAssertEqual(stat(fifo.path, &info), 0)
    XCTAssertEqual(info.st_mode & S_IFMT, S_IFIFO, "the FIFO is still a FIFO")

    XCTAssertThrowsError(try AtomicFile.write(Data(), to: folder)) { error in
      XCTAssertTrue("\(error)".contains("is a folder"), "\(error)")
    }
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["pipe"], "nothing partial is left")
  }

  func testAnOutputFolderInsideTheDataBeingRead() throws {
    let data = folder.appendingPathComponent("DAVIS")
    try FileManager.default.createDirectory(at: data.appendingPathComponent("Annotations/480p"), withIntermediateDirectories: true)
    let link = folder.appendingPathComponent("alias")
    try FileManager.default.createSymbolicLink(at: link, withDestinationURL: data)
    XCTAssertTrue(OutputFolder.isInside(data.appendingPathComponent("Annotations/480p"), data))
    XCTAssertTrue(OutputFolder.isInside(link.appendingPathComponent("Annotations/480p/new"), data), "through a link")
    XCTAssertTrue(OutputFolder.isInside(data.appendingPathComponent("Annotations/../results"), data))
    XCTAssertFalse(OutputFolder.isInside(folder.appendingPathComponent("results"), data))
    XCTAssertFalse(OutputFolder.isInside(folder.appendingPathComponent("DAVIS-results"), data))
  }

  func testMemoryBudgetSizesAndRefusals() throws {
    XCTAssertEqual(MemoryBudget.parse("512M"), 512 << 20)
    XCTAssertEqual(MemoryBudget.parse("8G"), 8 << 30)
    XCTAssertEqual(MemoryBudget.parse("1.5GiB"), 3 << 29)
    XCTAssertEqual(MemoryBudget.parse("1000"), 1000)
    for bad in ["", "G", "-1G", "lots", "1e30"] { XCTAssertNil(MemoryBudget.parse(bad), bad) }
    defer { MemoryBudget.limit = nil }
    MemoryBudget.limit = 1 << 30
    XCTAssertNoThrow(try MemoryBudget.check(1 << 29, for: "half"))
    XCTAssertThrowsError(try MemoryBudget.check(3 << 30, for: "this")) { error in
      XCTAssertEqual("\(error)", "this needs about 3.2 GB, more than --memory-limit 1.1 GB")
    }
    MemoryBudget.limit = nil
    XCTAssertGreaterThan(MemoryBudget.cap().bytes, 0)
    XCTAssertNotNil(MemoryBudget.heapInUse())
  }
}
