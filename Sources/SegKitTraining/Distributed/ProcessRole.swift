import Foundation

/// Which process of a data-parallel run this is: rank `rank` of `worldSize`. Only
/// rank 0 writes (run folder, logs, checkpoints); each rank trains on its own shard.
public struct ProcessRole: Sendable, Equatable {
  public let rank: Int
  public let worldSize: Int

  public init(rank: Int, worldSize: Int) throws {
    guard worldSize >= 1, (0..<worldSize).contains(rank) else {
      throw TrainingError("rank \(rank) of world size \(worldSize): need 0 ≤ rank < world size")
    }
    self.rank = rank
    self.worldSize = worldSize
  }

  /// One process, the only one.
  public static let single = try! ProcessRole(rank: 0, worldSize: 1)

  /// Whether this process writes the run folder, logs and checkpoints.
  public var writes: Bool { rank == 0 }
}
