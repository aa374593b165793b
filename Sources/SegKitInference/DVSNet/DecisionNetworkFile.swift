import Foundation

/// A decision network's weights file: its state dict (safetensors) with the feature
/// channels and the grid in the metadata, which its shapes alone do not determine.
public enum DecisionNetworkFile {
  public static func write(_ network: DecisionNetwork, to url: URL, metadata: [String: String] = [:]) throws {
    var entries = metadata
    entries["model"] = "dvsnet_decision"
    entries["feature_channels"] = String(network.featureChannels)
    entries["grid"] = "\(network.grid.height)x\(network.grid.width)"
    try SafeTensors.write(try StateDict(try network.stateDict()), metadata: entries, to: url)
  }

  public static func read(_ url: URL) throws -> DecisionNetwork {
    let (state, metadata): (StateDict, [String: String])
    do { (state, metadata) = try SafeTensors.read(contentsOf: url) } catch {
      throw InferenceError("\(url.path): cannot read the decision network (\(error))")
    }
    let grid = metadata["grid"]?.split(separator: "x").compactMap { Int($0) } ?? []
    guard metadata["model"] == "dvsnet_decision", let channels = metadata["feature_channels"].flatMap(Int.init),
          (1...4096).contains(channels), grid.count == 2, grid.allSatisfy({ (1...64).contains($0) }) else {
      throw InferenceError("\(url.path): not a decision network written by `segkit dvs train-decision` (its metadata lacks model, feature_channels or grid)")
    }
    // The file's own shapes must agree before the network is built, so that a small
    // file cannot declare a network larger than itself.
    let expected = DecisionNetwork.parameterShapes(featureChannels: channels, grid: Size2(grid[0], grid[1]))
    for (name, shape) in expected where state[name]?.shape != shape {
      throw InferenceError("\(url.path): \(name) should be \(shape) for \(channels) channels and a \(grid[0])×\(grid[1]) grid, found \(state[name].map { "\($0.shape)" } ?? "nothing")")
    }
    let network = try DecisionNetwork(featureChannels: channels, grid: Size2(grid[0], grid[1]))
    do { try network.loadStateDict(state) } catch {
      throw InferenceError("\(url.path): the weights do not fit a decision network on \(channels) channels and a \(grid[0])×\(grid[1]) grid (\(error))")
    }
    network.eval()
    return network
  }
}
