import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor
import SegKitTraining

/// `segkit vos …`: semi-supervised video object segmentation.
struct VOSCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vos",
    abstract: "Video object segmentation: parent training, one-shot segmentation of DAVIS sequences, DAVIS evaluation.",
    subcommands: [VOSTrain.self, VOSSegment.self, VOSEval.self, VOSAblation.self]
  )
}

struct VOSTrain: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "train",
    abstract: "Train a parent network for one-shot video object segmentation (OSVOS's offline stage) in a run folder.",
    discussion: """
      `segkit train` with task foreground, model osvos_vgg16 and dataset davis2016 as the \
      defaults under the config file: every annotated object of every frame is foreground, \
      the loss is OSVOS's class-balanced sigmoid cross-entropy on the fuse and the side \
      outputs (side_loss_weight, side_loss_schedule), validation reports the foreground IoU. \
      DAVIS 2017 (dataset: davis2017) trains on its objects merged into one foreground. \
      Ready configs: configs/osvos-parent-pytorch.yaml, configs/osvos-parent-tensorflow.yaml \
      and configs/osvos-parent-mindspore.yaml (the three releases' recipes), \
      configs/osvos-parent-cpu.yaml (a small encoder and crop for a CPU). The run folder \
      is what `segkit vos segment --parent` takes. Ctrl-C checkpoints; --resume continues \
      exactly. Settings: `segkit train --help`.
      """)

  @OptionGroup var arguments: TrainingArguments

  func run() throws {
    var defaults = TrainingConfig()
    defaults.task = .foreground
    defaults.model.name = "osvos_vgg16"
    defaults.data.dataset = "davis2016"
    try arguments.train(defaults: defaults, command: "segkit vos train")
  }
}
