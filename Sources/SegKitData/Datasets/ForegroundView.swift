/// A dataset seen as foreground against background: every class but 0 becomes 1,
/// void stays void. Binary (video object) segmentation trains and scores on this.
public struct ForegroundView: SampleSource {
  public let base: any SampleSource
  public init(_ base: any SampleSource) { self.base = base }
  public var count: Int { base.count }

  public func loadSample(at index: Int) throws -> Sample {
    var sample = try base.loadSample(at: index)
    if var label = sample.label {
      for i in label.pixels.indices where label.pixels[i] != 0 && label.pixels[i] != voidLabel { label.pixels[i] = 1 }
      sample.label = label
    }
    return sample
  }
}

/// The first `count` samples of a source (validation on a subset).
public struct SampleSubset: SampleSource {
  public let base: any SampleSource
  public let count: Int
  public init(base: any SampleSource, count: Int) {
    self.base = base
    self.count = min(count, base.count)
  }
  public func loadSample(at index: Int) throws -> Sample { try base.loadSample(at: index) }
}

extension DatasetFormat {
  /// The format a name stands for: a raw value (voc, voc_aug, davis2017, …) or a
  /// common spelling (pascal_voc, pascal_voc_aug, ade, davis).
  public init(named name: String) throws {
    let key = name.lowercased().replacingOccurrences(of: "-", with: "_")
    let aliases: [String: DatasetFormat] = [
      "pascal_voc": .voc, "pascal": .voc, "voc2012": .voc, "pascal_voc_aug": .vocAug, "vocaug": .vocAug,
      "ade": .ade20k, "davis": .davis2017,
    ]
    guard let format = DatasetFormat(rawValue: key) ?? aliases[key] else {
      let known = DatasetFormat.allCases.map(\.rawValue).joined(separator: ", ")
      throw DataError("unknown dataset '\(name)': expected one of \(known) (or pascal_voc, pascal_voc_aug)")
    }
    self = format
  }

  /// The colormap of a format that needs no files (every format but folder).
  public var builtInColormap: Colormap? {
    try? Colormap.named(self == .vocAug ? "pascal" : rawValue)
  }
}
