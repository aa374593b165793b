import SegKitNN
import SegKitTestSupport
import XCTest

/// The oracle exchange these tests rely on: inputs reach the script bit for bit,
/// state dicts and metadata come back.
final class OracleExchangeTests: XCTestCase {
  func testInputsStatesAndMetadataRoundTrip() throws {
    let x = try Tensor([1.5, -2, 0.25, 3] as [Float], shape: [2, 2])
    let labels = try Tensor([0, 3, 7] as [Int64], shape: [3])
    let oracle = try OracleTensors.run("""
      inputs = load_inputs()
      save('twice', inputs['x'] * 2)
      save('labels', inputs['labels'] + 1)
      save_state('conv', nn.Conv2d(2, 3, 1))
      save_meta({'names': sorted(inputs), 'dtype': str(inputs['labels'].dtype)})
      """, inputs: [("x", x), ("labels", labels)])
    try assertMatchesOracle(try x * 2, oracle["twice"], rtol: 0, atol: 0, "float input")
    XCTAssertEqual(try oracle["labels"].toArray(Int64.self), [1, 4, 8])
    XCTAssertEqual(try oracle.entries(under: "conv").map(\.0), ["bias", "weight"])
    XCTAssertEqual(oracle.meta["names"] as? [String], ["labels", "x"])
    XCTAssertEqual(oracle.meta["dtype"] as? String, "torch.int64")
  }
}
