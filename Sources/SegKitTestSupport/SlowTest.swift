import Foundation
import XCTest

/// The test tiers. `scripts/test.sh` runs every test; `scripts/test.sh --fast` sets
/// SEGKIT_FAST=1 and runs only the unit and parity tests on tiny tensors, skipping
/// what calls this: training loops of more than a few steps, multi-process runs,
/// end-to-end pipelines, launches of the `segkit` executable and parity tests of
/// whole full-size networks.
public enum SlowTest {
  /// Whether this process runs the fast tier (SEGKIT_FAST=1).
  public static var isFastTier: Bool {
    ProcessInfo.processInfo.environment["SEGKIT_FAST"] == "1"
  }

  /// Skips the calling test (or, from `setUpWithError`, every test of the class)
  /// in the fast tier; does nothing in the full suite.
  public static func skipInFastTier(file: StaticString = #filePath, line: UInt = #line) throws {
    if isFastTier {
      throw XCTSkip("slow: skipped by the fast tier (SEGKIT_FAST=1)", file: file, line: line)
    }
  }
}
