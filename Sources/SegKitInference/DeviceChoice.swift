extension Device {
  /// A device named as users write it: "auto" is the first CUDA device, else the
  /// CPU; any other name ("cpu", "cuda", "cuda:1", "mps") must be present here.
  public static func resolve(_ text: String) throws -> Device {
    if text.lowercased() == "auto" { return cudaDeviceCount > 0 ? .cuda(0) : .cpu }
    let device: Device
    do {
      device = try Device(parsing: text)
    } catch {
      throw InferenceError("device '\(text)': \(error)")
    }
    guard device.isAvailable else {
      throw InferenceError(
        "device \(text) is not available here (available: \(available.map(\.description).joined(separator: ", ")))")
    }
    return device
  }
}
