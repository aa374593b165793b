/// "Did you mean": the names closest to a misspelt one.
public enum Spelling {
  /// Levenshtein distance: insertions, deletions and substitutions.
  public static func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    var previous = Array(0...b.count)
    for (i, x) in a.enumerated() {
      var current = [i + 1]
      for (j, y) in b.enumerated() {
        current.append(min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1)))
      }
      previous = current
    }
    return previous[b.count]
  }

  /// The candidates within a few edits of `name` (or containing it, with
  /// `substrings`), nearest first, at most `limit`.
  public static func closest(to name: String, among candidates: [String], limit: Int = 3, substrings: Bool = false) -> [String] {
    let query = name.lowercased()
    let threshold = max(2, query.count / 3)
    return candidates.map { ($0, editDistance(query, $0)) }
      .filter { $0.1 <= threshold || (substrings && $0.0.contains(query)) }
      .sorted { ($0.1, $0.0) < ($1.1, $1.0) }
      .prefix(limit).map(\.0)
  }
}
