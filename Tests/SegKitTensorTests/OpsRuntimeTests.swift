import SegKitTensor
import XCTest

/// Threads, devices, versions and how tensors describe themselves.
final class OpsRuntimeTests: XCTestCase {
  func testThreads() throws {
    let previous = Torch.threads
    defer { try? Torch.setThreads(previous) }
    XCTAssertGreaterThanOrEqual(previous, 1)
    try Torch.setThreads(1)
    XCTAssertEqual(Torch.threads, 1)
    try Torch.setThreads(2)
    XCTAssertEqual(Torch.threads, 2)
    // Ops still run after the change.
    XCTAssertEqual(try Tensor.ones([64, 64]).sum().item(), 4096)
  }

  func testVersion() {
    XCTAssertTrue(Torch.version.hasPrefix("2."), Torch.version)
  }

  func testDevices() throws {
    let devices = Device.available
    XCTAssertEqual(devices.first, .cpu)
    XCTAssertEqual(devices.count, 1 + Device.cudaDeviceCount + (Device.isMPSAvailable ? 1 : 0))
    XCTAssertTrue(Device.cpu.isAvailable)
    XCTAssertEqual(Device.cuda(0).isAvailable, Device.cudaDeviceCount > 0)
    XCTAssertFalse(Device.cuda(-1).isAvailable)
    XCTAssertFalse(Device.cuda(Device.cudaDeviceCount).isAvailable)
    for device in devices {
      XCTAssertTrue(device.isAvailable)
      let t = try Tensor.arange(4, dtype: .float32, device: device)
      XCTAssertEqual(t.device, device)
      XCTAssertEqual(try t.toArray(Float.self), [0, 1, 2, 3])
      XCTAssertEqual(try t.to(.cpu).device, .cpu)
    }
  }

  func testDeviceParsingAndDescription() throws {
    XCTAssertEqual(try Device(parsing: "cpu"), .cpu)
    XCTAssertEqual(try Device(parsing: "CUDA"), .cuda(0))
    XCTAssertEqual(try Device(parsing: "cuda:3"), .cuda(3))
    XCTAssertEqual(try Device(parsing: "mps"), .mps)
    XCTAssertEqual(Device.cpu.description, "cpu")
    XCTAssertEqual(Device.cuda(1).description, "cuda:1")
    XCTAssertEqual(Device.mps.description, "mps")
    for device in [Device.cpu, .cuda(0), .cuda(2), .mps] {
      XCTAssertEqual(try Device(parsing: device.description), device)
    }
  }

  func testDTypeProperties() {
    XCTAssertEqual(DType.allCases.map(\.description),
                   ["uint8", "int8", "int16", "int32", "int64", "float16", "float32", "float64", "bool", "bfloat16"])
    XCTAssertEqual(DType.allCases.map(\.byteSize), [1, 1, 2, 4, 8, 2, 4, 8, 1, 2])
    XCTAssertEqual(DType.allCases.filter(\.isFloatingPoint), [.float16, .float32, .float64, .bfloat16])
    for dtype in DType.allCases {
      XCTAssertEqual(try Tensor.zeros([2], dtype: dtype).dtype, dtype)
    }
  }

  func testTensorDescription() throws {
    let text = try Tensor([1.5, -2, 3] as [Float]).description
    XCTAssertTrue(text.contains("1.5000"), text)
    XCTAssertTrue(text.contains("-2.0000"), text)
    XCTAssertTrue(text.contains("CPUFloatType{3}"), text)
    let ints = try Tensor([1, 2, 3, 4] as [Int], shape: [2, 2]).description
    XCTAssertTrue(ints.contains("CPULongType{2,2}"), ints)
    XCTAssertTrue(try Tensor(scalar: 2, dtype: .bool).description.contains("CPUBoolType{}"))
    XCTAssertEqual(Size2(3, 4).description, "3×4")
    XCTAssertEqual(TorchError("boom").description, "boom")
  }

  func testPropertiesOfViews() throws {
    let t = try Tensor.zeros([2, 3, 4])
    XCTAssertEqual(t.rank, 3)
    XCTAssertEqual(t.count, 24)
    XCTAssertEqual(t.strides, [12, 4, 1])
    XCTAssertTrue(t.isContiguous)
    let p = try t.permute(0, 2, 1)
    XCTAssertEqual(p.shape, [2, 4, 3])
    XCTAssertEqual(p.strides, [12, 1, 4])
    XCTAssertFalse(p.isContiguous)
    let c = try p.contiguous()
    XCTAssertTrue(c.isContiguous)
    XCTAssertEqual(c.strides, [12, 3, 1])
    let image = try Tensor.zeros([1, 3, 2, 2])
    let channelsLast = try image.contiguous(.channelsLast)
    XCTAssertTrue(channelsLast.isContiguous(.channelsLast))
    XCTAssertFalse(channelsLast.isContiguous)
    XCTAssertEqual(channelsLast.strides, [12, 1, 6, 3])
    XCTAssertEqual(try Tensor(scalar: 1).rank, 0)
    XCTAssertEqual(try Tensor(scalar: 1).count, 1)
  }
}
