import ArgumentParser
import Dispatch
import Foundation
import SegKitTensor
import SegKitTraining

struct Train: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train a segmentation model in a run folder (config, log, checkpoints, TensorBoard events).",
    discussion: """
      Settings come from the defaults, then --config FILE.yaml (a flat mapping of key: value), \
      then each --set key=value, in that order. The run folder gets the resolved config.yaml, \
      train.log, checkpoints/ (the last keep_checkpoints kept), TensorBoard event files \
      (tensorboard --logdir RUN) and, at the end, model.safetensors (weights only).
      Ctrl-C writes a checkpoint and exits with status 130; --resume RUN continues it exactly.

      Data parallel: --nproc-per-node N starts N processes on this machine (PyTorch's \
      c10d with Gloo), each training on its shard with train_batch_size images; for several \
      machines run it on each with --nnodes, --node-rank and --master-addr, or start SegKit \
      yourself with torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, \
      MASTER_PORT), as Slurm's srun can. Rank 0 writes the run folder; name it with --run.

      SETTINGS (--set key=value; lists as [a, b] or a,b; null for none):
      \(settingsHelp)
      """
  )

  @OptionGroup var arguments: TrainingArguments

  func run() throws {
    try arguments.train(defaults: TrainingConfig(), command: "segkit train")
  }

  static var settingsHelp: String {
    var lines: [String] = []
    var section = ""
    for setting in TrainingConfig.settings {
      if setting.section != section {
        section = setting.section
        lines.append("")
        lines.append("  \(section):")
      }
      let scope = setting.task.map { "task \($0.rawValue) only; " } ?? ""
      lines.append("    \(setting.key) (\(scope)\(setting.type); default \(setting.defaultValue))")
      lines.append("        \(setting.help)")
    }
    return lines.joined(separator: "\n")
  }
}
