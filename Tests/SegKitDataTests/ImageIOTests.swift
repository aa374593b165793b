import Foundation
import SegKitData
import SegKitTestSupport
import XCTest

/// Round trips through libpng/libjpeg, checked against Pillow in the oracle environment.
final class ImageIOTests: XCTestCase {
  private var folder: URL!

  override func setUpWithError() throws {
    folder = try Oracle.temporaryDirectory("segkit-imageio")
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(at: folder)
  }

  private func url(_ name: String) -> URL { folder.appendingPathComponent(name) }

  private func raw(_ name: String) throws -> [UInt8] { [UInt8](try Data(contentsOf: url(name))) }

  /// Pillow writes every kind of file; `<name>.raw` holds the pixels Pillow decodes from it.
  func testReadsWhatPillowWrites() throws {
    try Oracle.run("""
      import sys, numpy as np
      from PIL import Image
      d = sys.argv[1]
      rng = np.random.default_rng(0)
      def save(name, img, **kw):
          img.save(f"{d}/{name}", **kw)
          open(f"{d}/{name}.raw", "wb").write(np.asarray(Image.open(f"{d}/{name}")).tobytes())
      save("gray.png", Image.fromarray(rng.integers(0, 256, (7, 13), dtype=np.uint8), "L"))
      save("rgb.png", Image.fromarray(rng.integers(0, 256, (7, 13, 3), dtype=np.uint8), "RGB"))
      save("rgba.png", Image.fromarray(rng.integers(0, 256, (7, 13, 4), dtype=np.uint8), "RGBA"))
      save("la.png", Image.fromarray(rng.integers(0, 256, (7, 13, 2), dtype=np.uint8), "LA"))
      idx = rng.integers(0, 21, (9, 11), dtype=np.uint8); idx[0, :] = 255; idx[1, 1] = 0
      p = Image.fromarray(idx, "P")
      pal = rng.integers(0, 256, 768, dtype=np.uint8); p.putpalette(pal.tolist())
      save("palette.png", p)
      open(f"{d}/palette.pal", "wb").write(pal.tobytes())
      small = Image.fromarray(rng.integers(0, 4, (5, 6), dtype=np.uint8), "P")
      small.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255])
      save("palette2bit.png", small, bits=2)
      v16 = (np.arange(6 * 4, dtype=np.uint16).reshape(4, 6) * 2741)
      Image.fromarray(v16.astype(np.uint16)).save(f"{d}/gray16.png")
      open(f"{d}/gray16.raw", "wb").write(v16.astype(">u2").tobytes())
      smooth = (np.add.outer(np.arange(24) * 9, np.arange(32) * 7) % 256).astype(np.uint8)
      save("rgb.jpg", Image.fromarray(np.stack([smooth, smooth[::-1], 255 - smooth], 2), "RGB"), quality=90)
      save("gray.jpg", Image.fromarray(smooth, "L"), quality=90)
      """, arguments: [folder.path])

    // 8-bit gray, RGB, RGBA: native channels exact; read() gives RGB.
    let gray = try ImageIO.readNative(url("gray.png"))
    XCTAssertEqual([gray.width, gray.height, gray.channels], [13, 7, 1])
    XCTAssertEqual(gray.pixels, try raw("gray.png.raw"))
    let grayRGB = try ImageIO.read(url("gray.png"))
    XCTAssertEqual(grayRGB.channels, 3)
    XCTAssertEqual(grayRGB.pixels, gray.pixels.flatMap { [$0, $0, $0] })
    XCTAssertEqual(try ImageIO.read(url("rgb.png")).pixels, try raw("rgb.png.raw"))
    let rgba = try ImageIO.readNative(url("rgba.png"))
    XCTAssertEqual(rgba.channels, 4)
    XCTAssertEqual(rgba.pixels, try raw("rgba.png.raw"))
    XCTAssertEqual(try ImageIO.read(url("rgba.png")).pixels, rgba.droppingAlphaForTest())
    let la = try raw("la.png.raw")
    var expandedLA: [UInt8] = []
    for i in stride(from: 0, to: la.count, by: 2) { expandedLA += [la[i], la[i], la[i], la[i + 1]] }
    XCTAssertEqual(try ImageIO.readNative(url("la.png")).pixels, expandedLA)

    // Palette PNGs: indices exactly, also with 2-bit packing; colours through read().
    let indices = try raw("palette.png.raw")
    let labels = try ImageIO.readLabel(url("palette.png"))
    XCTAssertEqual([labels.width, labels.height, labels.channels], [11, 9, 1])
    XCTAssertEqual(labels.pixels, indices)
    XCTAssertEqual(labels.pixels[0], 255)
    let palette = try raw("palette.pal")
    let colors: [UInt8] = indices.flatMap { index -> ArraySlice<UInt8> in palette[Int(index) * 3..<Int(index) * 3 + 3] }
    XCTAssertEqual(try ImageIO.read(url("palette.png")).pixels, colors)
    XCTAssertEqual(try ImageIO.readLabel(url("palette2bit.png")).pixels, try raw("palette2bit.png.raw"))
    XCTAssertEqual(try ImageIO.readLabel(url("gray.png")).pixels, gray.pixels)

    // 16-bit gray: images keep the high byte; label maps refuse it.
    let big = try raw("gray16.raw")
    let highBytes: [UInt8] = stride(from: 0, to: big.count, by: 2).map { big[$0] }
    XCTAssertEqual(try ImageIO.readNative(url("gray16.png")).pixels, highBytes)
    XCTAssertThrowsError(try ImageIO.readLabel(url("gray16.png"))) { XCTAssertTrue("\($0)".contains("16-bit"), "\($0)") }

    // JPEG: the same libjpeg-turbo decoder as Pillow, so within a level or two at most.
    for name in ["rgb.jpg", "gray.jpg"] {
      let ours = try ImageIO.readNative(url(name))
      let theirs = try raw("\(name).raw")
      XCTAssertEqual(ours.pixels.count, theirs.count, name)
      let worst = zip(ours.pixels, theirs).map { abs(Int($0) - Int($1)) }.max() ?? 0
      XCTAssertLessThanOrEqual(worst, 2, name)
    }
    XCTAssertEqual(try ImageIO.read(url("gray.jpg")).channels, 3)
    XCTAssertTrue(try ImageIO.size(of: url("rgb.jpg")) == (32, 24))
    XCTAssertTrue(try ImageIO.size(of: url("palette.png")) == (11, 9))
    XCTAssertThrowsError(try ImageIO.readLabel(url("rgb.png"))) { XCTAssertTrue("\($0)".contains("rgb.png"), "\($0)") }
    XCTAssertThrowsError(try ImageIO.readLabel(url("rgb.jpg"))) { XCTAssertTrue("\($0)".contains("JPEG"), "\($0)") }
  }

  /// SegKit writes; Pillow reads back modes, palettes and pixels.
  func testPillowReadsWhatSegKitWrites() throws {
    var labels = Image(width: 10, height: 6, channels: 1)
    for i in labels.pixels.indices { labels.pixels[i] = UInt8(i % 21) }
    labels[0, 0, 0] = 255
    try ImageIO.writePNG(labels, to: url("labels.png"), palette: .pascal)
    var rgb = Image(width: 9, height: 5, channels: 3)
    for i in rgb.pixels.indices { rgb.pixels[i] = UInt8((i * 37) % 256) }
    try ImageIO.writePNG(rgb, to: url("rgb.png"))
    var rgba = Image(width: 4, height: 3, channels: 4)
    for i in rgba.pixels.indices { rgba.pixels[i] = UInt8((i * 53) % 256) }
    try ImageIO.writePNG(rgba, to: url("rgba.png"))
    try ImageIO.writePNG(labels, to: url("gray.png"))
    try ImageIO.writeJPEG(rgb, to: url("out.jpg"), quality: 95)

    let report = try Oracle.run("""
      import sys, numpy as np
      from PIL import Image
      d = sys.argv[1]
      for name in ["labels.png", "rgb.png", "rgba.png", "gray.png", "out.jpg"]:
          im = Image.open(f"{d}/{name}")
          print(name, im.mode, im.size[0], im.size[1])
          open(f"{d}/{name}.raw", "wb").write(np.asarray(im).tobytes())
      open(f"{d}/labels.pal", "wb").write(bytes(Image.open(f"{d}/labels.png").getpalette()))
      """, arguments: [folder.path])
    XCTAssertEqual(report.split(separator: "\n"), [
      "labels.png P 10 6", "rgb.png RGB 9 5", "rgba.png RGBA 4 3", "gray.png L 10 6", "out.jpg RGB 9 5",
    ])
    XCTAssertEqual(try raw("labels.png.raw"), labels.pixels)
    XCTAssertEqual(try raw("labels.pal"), Colormap.pascal.paletteBytes)
    XCTAssertEqual(try raw("rgb.png.raw"), rgb.pixels)
    XCTAssertEqual(try raw("rgba.png.raw"), rgba.pixels)
    XCTAssertEqual(try raw("gray.png.raw"), labels.pixels)
    XCTAssertEqual(try ImageIO.readLabel(url("labels.png")), labels)
    let jpeg = try raw("out.jpg.raw")
    XCTAssertEqual(try ImageIO.read(url("out.jpg")).pixels, jpeg)
    XCTAssertThrowsError(try ImageIO.writePNG(rgb, to: url("bad.png"), palette: .pascal))
  }

  func testDamagedFilesGiveErrorsNamingTheFile() throws {
    var image = Image(width: 40, height: 30, channels: 3)
    for i in image.pixels.indices { image.pixels[i] = UInt8((i * 7919) % 251) }
    try ImageIO.writePNG(image, to: url("whole.png"))
    try ImageIO.writeJPEG(image, to: url("whole.jpg"))
    for name in ["whole.png", "whole.jpg"] {
      let bytes = try Data(contentsOf: url(name))
      try bytes.prefix(bytes.count / 2).write(to: url("half-\(name)"))
      try bytes.prefix(40).write(to: url("header-\(name)"))
    }
    var noise = Data(count: 500)
    for i in 0..<noise.count { noise[i] = UInt8((i * 131 + 7) % 256) }
    try noise.write(to: url("noise.png"))
    var fakePNG = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
    fakePNG.append(noise)
    try fakePNG.write(to: url("fake.png"))
    var fakeJPEG = Data([0xFF, 0xD8, 0xFF])
    fakeJPEG.append(noise)
    try fakeJPEG.write(to: url("fake.jpg"))

    for name in ["half-whole.png", "half-whole.jpg", "header-whole.png", "header-whole.jpg", "noise.png",
                 "fake.png", "fake.jpg", "missing.png"] {
      XCTAssertThrowsError(try ImageIO.read(url(name)), name) { error in
        XCTAssertTrue("\(error)".contains(name), "\(error)")
      }
      XCTAssertThrowsError(try ImageIO.readLabel(url(name)), name)
    }
    XCTAssertThrowsError(try ImageIO.read(url("half-whole.jpg"))) { XCTAssertTrue("\($0)".contains("truncated"), "\($0)") }
    XCTAssertThrowsError(try ImageIO.size(of: url("noise.png")))
    XCTAssertThrowsError(try ImageIO.size(of: url("missing.png"))) { XCTAssertTrue("\($0)".contains("no such file"), "\($0)") }
    XCTAssertThrowsError(try ImageIO.writePNG(image, to: url("no/such/folder/x.png")))
  }

  func testTensorConversions() throws {
    var image = Image(width: 3, height: 2, channels: 3)
    for i in image.pixels.indices { image.pixels[i] = UInt8(i * 10) }
    let tensor = try image.tensor()
    XCTAssertEqual(tensor.shape, [3, 2, 3])
    let values = try tensor.toArray(Float.self)
    XCTAssertEqual(values[0], 0)
    XCTAssertEqual(values[1], 30 / 255, accuracy: 1e-6)  // channel 0 of pixel (1, 0)
    XCTAssertEqual(values[6], 10 / 255, accuracy: 1e-6)  // channel 1 of pixel (0, 0)
    XCTAssertEqual(try Image(tensor: tensor), image)

    let labels = try Image(width: 2, height: 2, channels: 1, pixels: [0, 5, 255, 20])
    let labelTensor = try labels.labelTensor()
    XCTAssertEqual(labelTensor.dtype, .int64)
    XCTAssertEqual(try labelTensor.toArray(Int64.self), [0, 5, 255, 20])
    XCTAssertEqual(try Image(tensor: labelTensor), labels)
    XCTAssertThrowsError(try image.labelTensor())
    XCTAssertThrowsError(try Image(tensor: Tensor([Int64(300)], shape: [1, 1])))
    XCTAssertThrowsError(try Image(width: 2, height: 2, channels: 3, pixels: [1, 2, 3]))
  }

  func testColormaps() throws {
    let pascal = Colormap.pascal
    XCTAssertEqual(pascal.classNames.count, 21)
    XCTAssertTrue(pascal.colors[1] == (128, 0, 0))
    XCTAssertTrue(pascal.colors[15] == (192, 128, 128))
    XCTAssertTrue(pascal.colors[255] == (224, 224, 192))
    XCTAssertEqual(Colormap.cityscapes.classNames.count, 19)
    XCTAssertTrue(Colormap.cityscapes.colors[0] == (128, 64, 128))
    XCTAssertTrue(Colormap.cityscapes.colors[18] == (119, 11, 32))
    XCTAssertEqual(Colormap.camvid.classNames.count, 11)
    XCTAssertEqual(Colormap.ade20k.classNames.count, 150)
    XCTAssertEqual(Colormap.ade20k.classNames.first, "wall")
    XCTAssertEqual(Colormap.ade20k.classNames.last, "flag")
    XCTAssertTrue(Colormap.ade20k.colors[149] == (92, 0, 255))
    for map in Colormap.all { XCTAssertEqual(map.colors.count, 256, map.name) }
    XCTAssertEqual(try Colormap.named("Cityscapes").name, "cityscapes")
    XCTAssertThrowsError(try Colormap.named("coco"))

    let labels = try Image(width: 2, height: 1, channels: 1, pixels: [1, 255])
    XCTAssertEqual(try pascal.colorize(labels).pixels, [128, 0, 0, 224, 224, 192])
  }

  /// A few dozen bytes that claim 26,000 × 26,000 pixels are refused from the header,
  /// before anything is allocated for the pixels.
  func testHugeHeaderIsRefusedBeforeDecoding() throws {
    let folder = try Oracle.temporaryDirectory("segkit-huge-png")
    defer { try? FileManager.default.removeItem(at: folder) }
    func chunk(_ type: String, _ body: [UInt8]) -> [UInt8] {
      let typed = Array(type.utf8) + body
      var crc: UInt32 = 0xFFFF_FFFF
      for byte in typed {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
      }
      crc ^= 0xFFFF_FFFF
      func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
      return bigEndian(UInt32(body.count)) + typed + bigEndian(crc)
    }
    let side: [UInt8] = [0, 0, 0x65, 0x90]  // 26,000
    let png = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + chunk("IHDR", side + side + [8, 0, 0, 0, 0]) + chunk("IEND", [])
    let url = folder.appendingPathComponent("bomb.png")
    try Data(png).write(to: url)
    XCTAssertEqual(try ImageIO.size(of: url).width, 26_000)
    for read in [ImageIO.read, ImageIO.readLabel] {
      XCTAssertThrowsError(try read(url)) { XCTAssertTrue("\($0)".contains("bomb.png: a 26000×26000 image is over the limit"), "\($0)") }
    }
  }

}

extension Image {
  fileprivate func droppingAlphaForTest() -> [UInt8] {
    stride(from: 0, to: pixels.count, by: 4).flatMap { pixels[$0..<$0 + 3] }
  }
}
