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
  public static func softmax(_ similarity: Tensor, topK: Int?) throws -> XMemAffinity {
    let elements = similarity.shape[1]
    if let topK, topK < elements {
      let (values, indices) = try similarity.topk(topK, dim: 1)
      let exponentials = try values.exp()
      return XMemAffinity(form: .topK(indices: indices, weights: try exponentials / exponentials.sum(dim: 1, keepDim: true), elements: elements))
    } else if topK != nil {
      // k covers the whole memory (XMem's torch.topk would refuse k > N): every
      // element kept, still without subtracting the maximum.
      let exponentials = try similarity.exp()
      return XMemAffinity(form: .dense(try exponentials / exponentials.sum(dim: 1, keepDim: true)))
    }
    return XMemAffinity(form: .dense(try similarity.softmax(dim: 1)))
  }

  /// Values [B·O, C^v, N] (or [O, C^v, N] sharing one affinity) read with `affinity` [B, N, M]: [.., C^v, M].
  public static func readout(_ affinity: Tensor, values: Tensor) throws -> Tensor {
    try values.matmul(affinity)
  }
}

/// How much each query reads each memory element: dense [B, N, M], or each query's top k
/// elements and their weights ([B, k, M] each), which XMem scatters into a dense matrix
/// of zeros and multiplies; read sparsely here, the same sums without the N × M product.
public struct XMemAffinity {
  public enum Form {
    case dense(Tensor)
    case topK(indices: Tensor, weights: Tensor, elements: Int)
  }

  public let form: Form

  /// The affinity as a dense [B, N, M] matrix (XMem's form, for tests and diagnostics).
  public func dense() throws -> Tensor {
    switch form {
    case .dense(let affinity): return affinity
    case .topK(let indices, let weights, let elements):
      let shape = [indices.shape[0], elements, indices.shape[2]]
      return try Tensor.zeros(shape, dtype: weights.dtype, device: weights.device).scatter(dim: 1, index: indices, source: weights)
    }
  }

  /// The affinity summed over the queries, [B, N]: how much each element was read,
  /// which decides what long-term memory keeps.
  public func usage() throws -> Tensor {
    switch form {
    case .dense(let affinity): return try affinity.sum(dim: 2)
    case .topK(let indices, let weights, let elements):
      guard indices.shape[0] == 1 else { return try dense().sum(dim: 2) }
      return try indices.flatten().bincount(weights: weights.flatten(), minLength: elements).to(weights.dtype).view([1, elements])
    }
  }

  /// Values [O, C, N] (read with batch 1) read by each query: [O, C, M].
  public func read(_ values: Tensor) throws -> Tensor {
    switch form {
    case .dense(let affinity): return try values.matmul(affinity)
    case .topK(let indices, let weights, _):
      guard indices.shape[0] == 1 else { return try values.matmul(dense()) }
      let (k, queries) = (indices.shape[1], indices.shape[2])
      let (objects, channels) = (values.shape[0], values.shape[1])
      // Queries in blocks, so that the gathered values stay near 64 MB.
      let block = max(1, min(queries, (64 << 20) / max(1, objects * channels * k * 4)))
      var parts: [Tensor] = []
      for start in stride(from: 0, to: queries, by: block) {
        let count = min(block, queries - start)
        let index = try indices.select(dim: 0, index: 0).narrow(dim: 1, start: start, length: count).contiguous()
        let weight = try weights.select(dim: 0, index: 0).narrow(dim: 1, start: start, length: count).view([1, 1, k, count])
        let gathered = try values.indexSelect(dim: 2, index: index.flatten()).view([objects, channels, k, count])
        parts.append(try (gathered * weight).sum(dim: 2))
      }
      return parts.count == 1 ? parts[0] : try Tensor.cat(parts, dim: 2)
    }
  }
}
