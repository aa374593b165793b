import Foundation
import SegKitNN

/// XMem's memory reading, the maths shared by training, inference and consolidation.
public enum XMemMemoryReading {
  /// XMem's anisotropic L2 similarity between memory keys and query keys:
  /// −Σ_c e_c (k_c − q_c)² without the query-only term's effect on the ranking,
  /// scaled by each memory element's shrinkage and 1/√C^k.
  ///
  /// - Parameters:
  ///   - memoryKey: [B, C^k, N]; `shrinkage`: [B, 1, N] or nil.
  ///   - queryKey: [B, C^k, M]; `selection`: [B, C^k, M] or nil (then STCN's L2 similarity).
  /// - Returns: [B, N, M].
  public static func similarity(memoryKey mk: Tensor, shrinkage: Tensor?, queryKey qk: Tensor, selection qe: Tensor?) throws -> Tensor {
    let keyChannels = Double(mk.shape[1])
    var similarity: Tensor
    if let qe {
      let mkT = try mk.transpose(1, 2)
      let aSquared = try mkT.square().matmul(qe)
      let twoAB = try 2 * mkT.matmul(qk * qe)
      let bSquared = try (qe * qk.square()).sum(dim: 1, keepDim: true)
      similarity = try aSquared.neg() + twoAB - bSquared
    } else {
      let aSquared = try mk.square().sum(dim: 1).unsqueeze(2)
      let twoAB = try 2 * mk.transpose(1, 2).matmul(qk)
      similarity = try aSquared.neg() + twoAB
    }
    if let shrinkage {
      similarity = try similarity * shrinkage.flatten(startDim: 1).unsqueeze(2) / keyChannels.squareRoot()
    } else {
      similarity = try similarity / keyChannels.squareRoot()
    }
    return similarity
  }

  /// The affinity: a softmax over the memory dimension (1) of `similarity` [B, N, M];
  /// with `topK`, only each query's k most similar memory elements are kept, their
  /// exponentials normalised (XMem subtracts no maximum there) and the rest zero.
  /// `usage` is the affinity summed over the queries, [B, N], which decides what
  /// long-term memory keeps.
  public static func softmax(_ similarity: Tensor, topK: Int?) throws -> (affinity: Tensor, usage: Tensor) {
    let affinity: Tensor
    let elements = similarity.shape[1]
    if let topK, topK < elements {
      let (values, indices) = try similarity.topk(topK, dim: 1)
      let exponentials = try values.exp()
      let weights = try exponentials / exponentials.sum(dim: 1, keepDim: true)
      affinity = try Tensor.zeros(similarity.shape, dtype: similarity.dtype, device: similarity.device)
        .scatter(dim: 1, index: indices, source: weights)
    } else if topK != nil {
      // k covers the whole memory (XMem's torch.topk would refuse k > N): every
      // element kept, still without subtracting the maximum.
      let exponentials = try similarity.exp()
      affinity = try exponentials / exponentials.sum(dim: 1, keepDim: true)
    } else {
      affinity = try similarity.softmax(dim: 1)
    }
    return (affinity, try affinity.sum(dim: 2))
  }

  /// Values [B·O, C^v, N] (or [O, C^v, N] sharing one affinity) read with `affinity` [B, N, M]: [.., C^v, M].
  public static func readout(_ affinity: Tensor, values: Tensor) throws -> Tensor {
    try values.matmul(affinity)
  }
}
