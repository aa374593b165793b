import Foundation
import SegKitTestSupport
import SegKitTraining
import XCTest

final class RunFolderTests: XCTestCase {
  var root: URL!

  override func setUpWithError() throws { root = try Oracle.temporaryDirectory() }
  override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

  func message(_ body: () throws -> Void) -> String {
    do { try body() } catch { return "\(error)" }
    return "no error"
  }

  func testNewRunCreatesTheFolderAndAppendsTheLog() throws {
    let url = root.appendingPathComponent("runs/first")
    let run = try RunFolder(url)
    try run.log("step 1 loss 2.5")
    try run.log("step 2 loss 2.0")
    try run.writeConfig("seed: 3\n")
    XCTAssertEqual(try run.storedConfig(), "seed: 3\n")
    let lines = try String(contentsOf: run.logURL, encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(lines.count, 2)
    XCTAssertTrue(lines[0].hasSuffix(" step 1 loss 2.5"))
    XCTAssertEqual(run.checkpoints.directory, url.appendingPathComponent("checkpoints"))

    // Resuming keeps what was there and appends.
    let resumed = try RunFolder(url, resume: true)
    try resumed.log("resumed")
    let after = try String(contentsOf: run.logURL, encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(after.count, 3)
    XCTAssertEqual(after[0], lines[0])
  }

  func testNonEmptyFolderIsRefusedUnlessResuming() throws {
    let url = root.appendingPathComponent("taken")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    let earlier = url.appendingPathComponent("train.log")
    try Data("earlier run\n".utf8).write(to: earlier)
    let text = message { _ = try RunFolder(url) }
    XCTAssertTrue(text.contains(url.path) && text.contains("not empty") && text.contains("train.log"), text)
    XCTAssertEqual(try String(contentsOf: earlier, encoding: .utf8), "earlier run\n")
    XCTAssertNoThrow(try RunFolder(url, resume: true))
  }

  func testUnwritableLocationsAreClearErrors() throws {
    // Under a regular file nothing can be created, even by root.
    let file = root.appendingPathComponent("plain-file")
    try Data("x".utf8).write(to: file)
    let inside = file.appendingPathComponent("run")
    let text = message { _ = try RunFolder(inside) }
    XCTAssertEqual(text, "cannot create the run folder \(inside.path): \(file.path) is a file, not a folder")
    let onFile = message { _ = try RunFolder(file, resume: true) }
    XCTAssertTrue(onFile.contains("\(file.path) is an existing file"), onFile)
    XCTAssertEqual(try String(contentsOf: file, encoding: .utf8), "x")
  }
}
