import Foundation
import SegKitInference
import SegKitService
import SegKitTestSupport
import XCTest
import ZIPFoundation

/// The service on a real loopback port, started and stopped by the test: its API from a
/// Python client (every endpoint, the label PNG equal to SegKit's own prediction, COCO
/// masks through pycocotools, caps, a propagation streamed, cancelled and downloaded),
/// expiry, and the page driven in headless Chromium.
final class ServiceTests: XCTestCase {
  override func setUpWithError() throws { try SlowTest.skipInFastTier() }

  /// One set of fixtures for the class (the oracle writes XMem's weights once).
  nonisolated(unsafe) private static var shared: Fixtures?
  static func fixtures() throws -> Fixtures {
    if let shared { return shared }
    shared = try Fixtures()
    return shared!
  }

  override class func tearDown() {
    if let shared { try? FileManager.default.removeItem(at: shared.root) }
    shared = nil
    super.tearDown()
  }

  /// A semantic run (LR-ASPP, 4 classes, random weights) and XMem weights, a test image, a DAVIS-like sequence.
  struct Fixtures {
    let root: URL
    let run: URL
    let xmem: URL

    init() throws {
      root = try Oracle.temporaryDirectory("segkit-serve")
      run = root.appendingPathComponent("street")
      xmem = root.appendingPathComponent("XMem.pth")
      let layout = RunLayout(run)
      try FileManager.default.createDirectory(at: layout.checkpointsURL, withIntermediateDirectories: true)
      Torch.manualSeed(3)
      let manifest = ModelManifest(model: "lraspp_mobilenet_v3_large", classes: 4, classNames: ["background", "road", "car", "sky"])
      // Random weights, the classifiers' biases zeroed so that the classes vary over the image.
      let weights = try StateDict(try ModelLoader.build(manifest).stateDict().map { name, tensor in
        (name, name.contains("classifier") && name.hasSuffix(".bias") ? try tensor * 0.0 : tensor)
      })
      try manifest.write(to: layout.manifestURL)
      try Checkpoint(model: weights, metadata: CheckpointMetadata(step: 1))
        .write(to: layout.checkpointsURL.appendingPathComponent("step-000001.safetensors"))
      try OracleTensors.run(try OracleModels.xmem() + "\n" + #"""
        net = OracleXMem()
        randomize(net, 5)
        torch.save(net.state_dict(), "\#(xmem.path)")
        """#)
      let sequence = Synthetic.videoSequence(seed: 4, split: "val", index: 0, frames: 6, width: 128, height: 96, objects: 2)
      try ImageIO.writePNG(sequence.frames[0], to: root.appendingPathComponent("image.png"))
      try ImageIO.writePNG(sequence.masks[0], to: root.appendingPathComponent("first_mask.png"), palette: .pascal)
      let archive = try Archive(url: root.appendingPathComponent("frames.zip"), accessMode: .create)
      for (t, frame) in sequence.frames.enumerated() {
        let jpeg = try ImageIO.jpegData(frame, quality: 95)
        try archive.addEntry(with: "seq/\(String(format: "%05d", t)).jpg", type: .file, uncompressedSize: Int64(jpeg.count)) { p, n in
          jpeg.subdata(in: Int(p)..<Int(p) + n)
        }
      }
      // SegKit's own prediction of the image (what `segkit predict --run` computes).
      let loaded = try ModelLoader.load(run: layout)
      let segmenter = try ImageSegmenter(model: loaded.network, device: .cpu, normalization: loaded.manifest.normalization)
      let image = try ImageIO.read(root.appendingPathComponent("image.png"))
      try ImageIO.writePNG(try segmenter.labels(image), to: root.appendingPathComponent("expected.png"))
      // A PNG header claiming 100,000 × 100,000 pixels: signature, then IHDR.
      var header = Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52])
      for value in [UInt32(100_000), 100_000] { withUnsafeBytes(of: value.bigEndian) { header.append(contentsOf: $0) } }
      header.append(contentsOf: [8, 2, 0, 0, 0, 0, 0, 0, 0] + [UInt8](repeating: 0, count: 64))
      try header.write(to: root.appendingPathComponent("big_header.png"))
    }
  }

  /// A running service; `stop()` ends it.
  final class Running {
    let service: SegmentationService
    let url: String
    private let task: Task<Void, Error>

    init(_ settings: ServiceSettings, fixtures: Fixtures, semanticVideo: SemanticVideoModel? = nil) throws {
      var xmemSettings = XMemSettings()
      (xmemSettings.size, xmemSettings.memEvery) = (nil, 2)
      service = try SegmentationService(
        settings: settings, models: [try ServedModel(run: fixtures.run)],
        xmem: try XMemSegmenters(weights: fixtures.xmem, settings: xmemSettings), semanticVideo: semanticVideo)
      let port = PortBox()
      let service = self.service
      task = Task { try await service.run { port.set($0) } }
      guard let bound = port.wait(seconds: 60) else { throw Oracle.Failure(description: "the service did not start") }
      url = "http://127.0.0.1:\(bound)"
    }

    func stop() { task.cancel() }
  }

  final class PortBox: @unchecked Sendable {
    private let condition = NSCondition()
    private var port: Int?
    func set(_ value: Int) { condition.withLock { port = value; condition.broadcast() } }
    func wait(seconds: Double) -> Int? {
      condition.withLock {
        let until = Date().addingTimeInterval(seconds)
        while port == nil && condition.wait(until: until) {}
        return port
      }
    }
  }

  /// Each service gets a folder of its own.
  static func settings(_ fixtures: Fixtures) -> ServiceSettings {
    var settings = ServiceSettings(folder: fixtures.root.appendingPathComponent("service-\(UUID().uuidString.prefix(8))"))
    (settings.port, settings.token) = (0, "s3cret")
    (settings.maxBodyBytes, settings.maxSessionBytes, settings.sessionIdle) = (1 << 20, 2 << 20, 600)
    return settings
  }

  static func python(_ script: String, _ arguments: [String]) throws -> String {
    let path = Oracle.packageRoot.appendingPathComponent("Tests/SegKitServiceTests/Python/\(script)").path
    return try Oracle.run("import runpy, sys\nsys.argv = sys.argv[1:]\nrunpy.run_path(sys.argv[0], run_name='__main__')",
                          arguments: [path] + arguments)
  }

  func testAPIFromAClient() throws {
    let fixtures = try Self.fixtures()
    let settings = Self.settings(fixtures)
    let running = try Running(settings, fixtures: fixtures)
    defer { running.stop() }
    let output = try Self.python("api_client.py", [running.url, "s3cret", fixtures.root.path])
    XCTAssertTrue(output.contains("api: all checks passed"), output)
    // Nothing of the ended session is left in the service's folder.
    let sessions = try FileManager.default.contentsOfDirectory(atPath: settings.folder.appendingPathComponent("sessions").path)
    XCTAssertEqual(sessions, [])
  }

  /// Concurrent requests gathered into batches give each image the labels it gets alone.
  func testMicroBatchesGiveEachImageItsOwnLabels() throws {
    let fixtures = try Self.fixtures()
    var settings = Self.settings(fixtures)
    (settings.maxBatch, settings.maxDelayMs) = (4, 300)
    let running = try Running(settings, fixtures: fixtures)
    defer { running.stop() }
    let output = try Oracle.run(#"""
      import concurrent.futures, http.client, io, re, sys, urllib.parse
      import numpy as np
      from PIL import Image
      url = urllib.parse.urlparse(sys.argv[1]); root = sys.argv[2]
      expected = np.array(Image.open(root + "/expected.png"))
      image = open(root + "/image.png", "rb").read()
      flipped = io.BytesIO(); Image.open(root + "/image.png").transpose(Image.FLIP_LEFT_RIGHT).save(flipped, "PNG")
      def call(method, path, body=None):
          c = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
          c.request(method, path, body=body, headers={"Authorization": "Bearer s3cret"})
          r = c.getresponse(); data = r.read(); c.close()
          assert r.status == 200, data
          return data
      alone = np.array(Image.open(io.BytesIO(call("POST", "/v1/segment", flipped.getvalue()))))
      bodies = [image, flipped.getvalue()] * 4
      with concurrent.futures.ThreadPoolExecutor(8) as pool:
          answers = list(pool.map(lambda b: np.array(Image.open(io.BytesIO(call("POST", "/v1/segment", b)))), bodies))
      for i, labels in enumerate(answers):
          assert (labels == (expected if i % 2 == 0 else alone)).all(), i
      metrics = call("GET", "/metrics").decode()
      ones = int(re.search(r'segkit_batch_size_bucket\{le="1.0"\} (\d+)', metrics).group(1))
      runs = int(re.search(r"segkit_batch_size_count (\d+)", metrics).group(1))
      assert runs < 9 and ones < runs, (ones, runs)
      print(f"batches: {runs} model runs for 9 images, {runs - ones} of them batches")
      """#, arguments: [running.url, fixtures.root.path])
    XCTAssertTrue(output.contains("batches:"), output)
    print(output)
  }

  /// DVSNet's annotated video as a job: accepted, progressing to done with the paths a
  /// fixed interval takes, its video downloadable; refusals in words; deleted with its files.
  func testSemanticVideoJobs() throws {
    let fixtures = try Self.fixtures()
    let flow = fixtures.root.appendingPathComponent("flownets_thin.safetensors")
    try StateDict(try FlowNetS(widths: .thin).stateDict()).save(to: flow)
    let video = fixtures.root.appendingPathComponent("street.mp4")
    let writer = try VideoWriter(url: video, width: 128, height: 64, fps: 10)
    for frame in Synthetic.videoSequence(seed: 6, split: "val", index: 0, frames: 8, width: 128, height: 64, objects: 2).frames {
      try writer.write(frame)
    }
    try writer.finish()
    let settings = Self.settings(fixtures)
    let running = try Running(settings, fixtures: fixtures,
                              semanticVideo: try SemanticVideoModel(run: fixtures.run, flow: flow, decision: nil))
    defer { running.stop() }
    let output = try Oracle.run(#"""
      import http.client, json, sys, time, urllib.parse
      url = urllib.parse.urlparse(sys.argv[1]); video = open(sys.argv[2], "rb").read()
      def call(method, path, body=None):
          c = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
          c.request(method, path, body=body, headers={"Authorization": "Bearer s3cret"})
          r = c.getresponse(); data = r.read(); c.close()
          return r.status, data
      status, data = call("POST", "/v1/videos/semantic?policy=interval:3&boxes=car", video)
      assert status == 202, (status, data)
      job = json.loads(data)
      assert job["state"] == "running" and job["total"] == 8 and job["policy"] == "key every 3 frames", job
      for _ in range(600):
          status, data = call("GET", f"/v1/jobs/{job['id']}")
          job = json.loads(data)
          if job["state"] != "running": break
          time.sleep(0.1)
      assert job["state"] == "done" and job["frames"] == 8, job
      assert (job["segmentationSteps"], job["flowSteps"]) == (3, 5), job
      status, data = call("GET", f"/v1/jobs/{job['id']}/result")
      assert status == 200 and data[4:8] == b"ftyp", (status, data[:20])
      for query, code, words in [("policy=balanced", 422, "decision network"), ("policy=sometimes", 400, "expected fast, balanced"),
                                 ("policy=interval:2&boxes=unicorn", 400, "boxes")]:
          status, data = call("POST", "/v1/videos/semantic?" + query, video)
          assert status == code and words in json.loads(data)["error"], (query, status, data)
      status, data = call("POST", "/v1/videos/semantic?policy=interval:2", b"not a video")
      assert status == 422 and "not a video" in json.loads(data)["error"], data
      assert call("DELETE", f"/v1/jobs/{job['id']}")[0] == 204
      # The same file opens a session: its frames decoded by ffmpeg.
      status, data = call("POST", "/v1/sessions", video)
      session = json.loads(data)
      assert status == 201 and (session["frames"], session["width"], session["height"]) == (8, 128, 64), (status, data)
      status, data = call("GET", f"/v1/sessions/{session['id']}/frames/7")
      assert status == 200 and data[:2] == b"\xff\xd8", (status, data[:8])
      assert call("DELETE", f"/v1/sessions/{session['id']}")[0] == 204
      assert call("GET", f"/v1/jobs/{job['id']}")[0] == 404
      print("jobs: all checks passed")
      """#, arguments: [running.url, video.path])
    XCTAssertTrue(output.contains("jobs: all checks passed"), output)
    Thread.sleep(forTimeInterval: 0.5)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: settings.folder.appendingPathComponent("jobs").path), [])
  }

  func testHostileTrafficGetsItsRefusalsAndHealthzAnswersThroughout() throws {
    let fixtures = try Self.fixtures()
    let settings = Self.settings(fixtures)
    let running = try Running(settings, fixtures: fixtures)
    defer { running.stop() }
    let output = try Self.python("hostile_client.py", [running.url, "s3cret", fixtures.root.path, settings.folder.path])
    XCTAssertTrue(output.contains("hostile: all checks passed"), output)
    print(output)
  }

  /// Screenshots of each step land in .build/page-screenshots for a person to look at.
  func testThePageInHeadlessChromium() throws {
    let fixtures = try Self.fixtures()
    try Data("not an image".utf8).write(to: fixtures.root.appendingPathComponent("not-an-image.png"))
    let running = try Running(Self.settings(fixtures), fixtures: fixtures)
    defer { running.stop() }
    let shots = Oracle.packageRoot.appendingPathComponent(".build/page-screenshots")
    try? FileManager.default.removeItem(at: shots)
    let output = try Self.python("page_browser.py", [running.url, "s3cret", fixtures.root.path, shots.path])
    XCTAssertTrue(output.contains("page: all checks passed"), output)
    print(output)
  }

  func testIdleSessionsExpireWithTheirFiles() throws {
    let fixtures = try Self.fixtures()
    var settings = Self.settings(fixtures)
    settings.sessionIdle = 1
    let running = try Running(settings, fixtures: fixtures)
    defer { running.stop() }
    let output = try Oracle.run(#"""
      import http.client, json, sys, time, urllib.parse
      url = urllib.parse.urlparse(sys.argv[1])
      def call(method, path, body=None):
          c = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
          c.request(method, path, body=body, headers={"Authorization": "Bearer s3cret"})
          r = c.getresponse(); data = r.read(); c.close()
          return r.status, data
      status, data = call("POST", "/v1/sessions", open(sys.argv[2], "rb").read())
      assert status == 201, data
      sid = json.loads(data)["id"]
      time.sleep(2.5)
      status, data = call("GET", "/v1/sessions/" + sid)
      assert status == 404, (status, data)
      print(sid)
      """#, arguments: [running.url, fixtures.root.appendingPathComponent("frames.zip").path])
    let id = output.trimmingCharacters(in: .whitespacesAndNewlines)
    XCTAssertEqual(id.count, 32)
    XCTAssertFalse(FileManager.default.fileExists(atPath: settings.folder.appendingPathComponent("sessions/\(id)").path))
  }
}
