import ArgumentParser
import Foundation
import SegKitData
import SegKitInference

/// How `segkit vos segment` runs its segmenters and reports: a video file, or DAVIS sequences.
extension VOSSegment {
  func segmentVideo(_ url: URL, firstMask: URL, with segmenter: any SequenceSegmenter, into folder: URL, replacing: Bool, stop: Interrupt) throws {
    let mask = try ImageIO.readLabel(firstMask)
    let start = Date()
    do {
      let result = try PredictionWriter(palette: .pascal).segmentVideo(
        url, with: segmenter, firstMask: mask, into: folder, frames: true, replacing: replacing, shouldStop: { stop.requested })
      if result.stopped {
        print("stopped after \(result.frames) frames: \(result.video.path) holds them and plays")
        throw ExitCode(130)
      }
      print("\(result.frames) frames, \(ObjectMasks.ids(in: mask).count) object(s), " + String(format: "%.1f s", Date().timeIntervalSince(start)))
      print("masks: \(folder.appendingPathComponent(url.deletingPathExtension().lastPathComponent).path)")
      print("video: \(result.video.path)")
    } catch is StoppedOnRequest {
      print("stopped: the frames so far are in \(folder.path)")
      throw ExitCode(130)
    }
  }

  func segmentDAVIS(_ segmentation: DAVISSegmentation, fineTunes: Bool, into folder: URL, replacing: Bool, stop: Interrupt) throws {
    let chosen = try davis.sequences(sequences)
    let bar = !plain && isatty(STDOUT_FILENO) == 1
    let number = Dictionary(uniqueKeysWithValues: chosen.enumerated().map { ($0.element.name, $0.offset + 1) })
    func label(_ sequence: VideoSequence) -> String { "[\(number[sequence.name] ?? 0)/\(chosen.count)] \(sequence.name)" }
    let outcome = try segmentation.run(chosen, singleObject: davis.year == 2016, into: folder, overwrite: replacing, report: { event in
      switch event {
      case .skipped(let sequence): print("\(label(sequence)): already done, skipped")
      case .started(let sequence): if bar { showOnCurrentLine("\(label(sequence)): fine-tuning") }
      case .frames(let sequence, let done, let total): if bar { showOnCurrentLine("\(label(sequence)): " + progressBar(done, total, unit: "frames")) }
      case .finished(let sequence, let timing):
        if bar { showOnCurrentLine("") }
        let tuning = fineTunes ? String(format: "fine-tuned in %.1f s, ", timing.fineTuningSeconds) : ""
        print("\(label(sequence)): \(timing.objects) object(s), \(tuning)" + String(format: "%.1f frames/s", timing.framesPerSecond))
      case .stopped(let sequence):
        if bar { showOnCurrentLine("") }
        print("\(label(sequence)): stopped; it will be segmented again on a rerun")
      }
      fflush(stdout)  // a line per sequence as it happens, also into a file or pipe
    }, shouldStop: { stop.requested })
    print("results: \(folder.path)")
    if outcome.stopped { throw ExitCode(130) }
  }

  func segmentYouTubeVOS(_ root: URL, with segmentation: YouTubeVOSSegmentation, into folder: URL, stop: Interrupt) throws {
    let (dataset, _) = try VideoDataset.youTubeVOS(root: root)
    for (number, video) in dataset.sequences.enumerated() {
      let label = "[\(number + 1)/\(dataset.sequences.count)] \(video.name)"
      do {
        let objects = try segmentation.segment(video, into: folder, shouldStop: { stop.requested })
        print("\(label): \(video.frames.count) frames, \(objects) object(s)")
      } catch is StoppedOnRequest {
        print("\(label): stopped; finished videos are in \(folder.path)")
        throw ExitCode(130)
      }
      fflush(stdout)
    }
    print("results: \(folder.appendingPathComponent("Annotations").path)")
  }
}
