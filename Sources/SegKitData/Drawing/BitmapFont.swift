/// A 5×7 pixel font for labels drawn into images (plot axes, box captions): digits,
/// capital letters (small ones are drawn as capitals) and a few signs. Characters
/// without a glyph are drawn as a hollow box.
public enum BitmapFont {
  public static let glyphWidth = 5
  public static let glyphHeight = 7
  /// Horizontal distance between successive characters, in font pixels.
  public static let advance = 6

  /// Rows top to bottom; "#" is ink.
  static let glyphs: [Character: [String]] = [
    "0": [" ### ", "#   #", "#  ##", "# # #", "##  #", "#   #", " ### "],
    "1": ["  #  ", " ##  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
    "2": [" ### ", "#   #", "    #", "   # ", "  #  ", " #   ", "#####"],
    "3": ["#####", "   # ", "  #  ", "   # ", "    #", "#   #", " ### "],
    "4": ["   # ", "  ## ", " # # ", "#  # ", "#####", "   # ", "   # "],
    "5": ["#####", "#    ", "#### ", "    #", "    #", "#   #", " ### "],
    "6": ["  ## ", " #   ", "#    ", "#### ", "#   #", "#   #", " ### "],
    "7": ["#####", "    #", "   # ", "  #  ", " #   ", " #   ", " #   "],
    "8": [" ### ", "#   #", "#   #", " ### ", "#   #", "#   #", " ### "],
    "9": [" ### ", "#   #", "#   #", " ####", "    #", "   # ", " ##  "],
    "A": [" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
    "B": ["#### ", "#   #", "#   #", "#### ", "#   #", "#   #", "#### "],
    "C": [" ### ", "#   #", "#    ", "#    ", "#    ", "#   #", " ### "],
    "D": ["#### ", "#   #", "#   #", "#   #", "#   #", "#   #", "#### "],
    "E": ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#####"],
    "F": ["#####", "#    ", "#    ", "#### ", "#    ", "#    ", "#    "],
    "G": [" ### ", "#   #", "#    ", "# ###", "#   #", "#   #", " ####"],
    "H": ["#   #", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"],
    "I": [" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "],
    "J": ["  ###", "   # ", "   # ", "   # ", "   # ", "#  # ", " ##  "],
    "K": ["#   #", "#  # ", "# #  ", "##   ", "# #  ", "#  # ", "#   #"],
    "L": ["#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"],
    "M": ["#   #", "## ##", "# # #", "# # #", "#   #", "#   #", "#   #"],
    "N": ["#   #", "#   #", "##  #", "# # #", "#  ##", "#   #", "#   #"],
    "O": [" ### ", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "],
    "P": ["#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "],
    "Q": [" ### ", "#   #", "#   #", "#   #", "# # #", "#  # ", " ## #"],
    "R": ["#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"],
    "S": [" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "],
    "T": ["#####", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  "],
    "U": ["#   #", "#   #", "#   #", "#   #", "#   #", "#   #", " ### "],
    "V": ["#   #", "#   #", "#   #", "#   #", "#   #", " # # ", "  #  "],
    "W": ["#   #", "#   #", "#   #", "# # #", "# # #", "# # #", " # # "],
    "X": ["#   #", "#   #", " # # ", "  #  ", " # # ", "#   #", "#   #"],
    "Y": ["#   #", "#   #", " # # ", "  #  ", "  #  ", "  #  ", "  #  "],
    "Z": ["#####", "    #", "   # ", "  #  ", " #   ", "#    ", "#####"],
    " ": ["     ", "     ", "     ", "     ", "     ", "     ", "     "],
    ".": ["     ", "     ", "     ", "     ", "     ", " ##  ", " ##  "],
    ",": ["     ", "     ", "     ", "     ", " ##  ", "  #  ", " #   "],
    ":": ["     ", " ##  ", " ##  ", "     ", " ##  ", " ##  ", "     "],
    "-": ["     ", "     ", "     ", "#####", "     ", "     ", "     "],
    "+": ["     ", "  #  ", "  #  ", "#####", "  #  ", "  #  ", "     "],
    "=": ["     ", "     ", "#####", "     ", "#####", "     ", "     "],
    "/": ["    #", "    #", "   # ", "  #  ", " #   ", "#    ", "#    "],
    "%": ["##   ", "##  #", "   # ", "  #  ", " #   ", "#  ##", "   ##"],
    "(": ["   # ", "  #  ", " #   ", " #   ", " #   ", "  #  ", "   # "],
    ")": [" #   ", "  #  ", "   # ", "   # ", "   # ", "  #  ", " #   "],
    "_": ["     ", "     ", "     ", "     ", "     ", "     ", "#####"],
  ]

  static let unknown = ["#####", "#   #", "#   #", "#   #", "#   #", "#   #", "#####"]

  /// The rows of `character`'s glyph.
  static func glyph(_ character: Character) -> [String] {
    glyphs[character] ?? glyphs[Character(character.uppercased())] ?? unknown
  }

  /// The width and height in image pixels of `text` drawn at `scale`.
  public static func size(of text: String, scale: Int = 1) -> (width: Int, height: Int) {
    (max(0, text.count * advance - 1) * scale, glyphHeight * scale)
  }

  /// Draws `text` with its top-left corner at (x, y), each font pixel a `scale`×`scale`
  /// square of `color`; what falls outside the image is clipped.
  public static func draw(_ text: String, into image: inout Image, x: Int, y: Int, color: [UInt8], scale: Int = 1) {
    for (index, character) in text.enumerated() {
      let left = x + index * advance * scale
      for (row, line) in glyph(character).enumerated() {
        for (column, ink) in line.enumerated() where ink == "#" {
          image.fill(x: left + column * scale, y: y + row * scale, width: scale, height: scale, color: color)
        }
      }
    }
  }
}

extension Image {
  /// Paints a rectangle of `color` (one value per channel), clipped to the image.
  public mutating func fill(x: Int, y: Int, width: Int, height: Int, color: [UInt8]) {
    let (x0, y0) = (max(0, x), max(0, y))
    let (x1, y1) = (min(self.width, x + width), min(self.height, y + height))
    guard x0 < x1, y0 < y1 else { return }
    for row in y0..<y1 {
      for column in x0..<x1 {
        for c in 0..<channels { pixels[(row * self.width + column) * channels + c] = color[min(c, color.count - 1)] }
      }
    }
  }

  /// The outline of a rectangle, `thickness` pixels wide, clipped to the image.
  public mutating func strokeRectangle(x: Int, y: Int, width: Int, height: Int, color: [UInt8], thickness: Int = 1) {
    fill(x: x, y: y, width: width, height: thickness, color: color)
    fill(x: x, y: y + height - thickness, width: width, height: thickness, color: color)
    fill(x: x, y: y, width: thickness, height: height, color: color)
    fill(x: x + width - thickness, y: y, width: thickness, height: height, color: color)
  }

  /// A straight line from (x0, y0) to (x1, y1), `thickness` pixels wide.
  public mutating func drawLine(from start: (x: Double, y: Double), to end: (x: Double, y: Double), color: [UInt8], thickness: Int = 1) {
    let steps = Int(max(abs(end.x - start.x), abs(end.y - start.y)).rounded(.up)) + 1
    guard steps < 1 << 20 else { return }
    for step in 0...steps {
      let t = Double(step) / Double(max(1, steps))
      let (x, y) = (start.x + (end.x - start.x) * t, start.y + (end.y - start.y) * t)
      fill(x: Int(x.rounded()) - thickness / 2, y: Int(y.rounded()) - thickness / 2, width: thickness, height: thickness, color: color)
    }
  }
}
