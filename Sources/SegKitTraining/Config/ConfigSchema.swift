import Foundation
import Yams

extension TrainingConfig {
  // MARK: The settings

  /// One setting as the command line and the documentation show it.
  public struct SettingInfo: Sendable {
    public let key: String
    public let section: String
    /// The task the setting belongs to; nil: every task's.
    public let task: ModelManifest.Task?
    /// What the value must be: "an integer", "a list of numbers", "one of poly, step, …".
    public let type: String
    public let help: String
    /// The default as YAML text.
    public let defaultValue: String
  }

  /// Every setting, in the order `yaml()` writes them.
  public static var settings: [SettingInfo] {
    let defaults = TrainingConfig()
    return table.map { SettingInfo(key: $0.key, section: $0.section, task: $0.task, type: $0.type, help: $0.help, defaultValue: $0.read(defaults)) }
  }

  /// Every key of every task.
  public static var keys: [String] { table.map(\.key) }

  /// The keys a configuration of `task` takes: the common ones and its own.
  public static func keys(for task: ModelManifest.Task) -> [String] {
    table.filter { $0.task == nil || $0.task == task }.map(\.key)
  }

  struct Setting {
    let key: String
    let section: String
    /// The task the setting belongs to; nil: every task's.
    let task: ModelManifest.Task?
    let type: String
    let help: String
    let read: (TrainingConfig) -> String
    /// False when the node is not of the setting's type.
    let assign: (inout TrainingConfig, Node) -> Bool
    /// String settings take command-line text as it is, not as YAML (paths may hold ": " or "#").
    let takesRawText: Bool
    /// A plain string setting, where empty text is the empty string (`--set val_split=`), not null.
    let isPlainString: Bool

    init<V: ConfigValue>(
      _ key: String, _ section: String, _ path: WritableKeyPath<TrainingConfig, V>, _ help: String,
      task: ModelManifest.Task? = nil
    ) {
      self.key = key
      self.section = section
      self.task = task
      self.help = help
      type = V.typeDescription
      takesRawText = V.self == String.self || V.self == String?.self
      isPlainString = V.self == String.self
      read = { $0[keyPath: path].yamlText }
      assign = { config, node in
        guard let value = V(configNode: node) else { return false }
        config[keyPath: path] = value
        return true
      }
    }
  }

  static let table: [Setting] = [
    Setting("task", "task", \.task,
            "semantic (a class per pixel), foreground (one-channel foreground against background), flow (optical flow of frame pairs) or memory (XMem: objects in video from a memory of frames)"),

    Setting("dataset", "dataset", \.data.dataset, "dataset name (pascal_voc, cityscapes, ade20k, camvid, davis, folder, …)"),
    Setting("dataset_dir", "dataset", \.data.datasetDir, "dataset root folder (required)"),
    Setting("train_split", "dataset", \.data.trainSplit, "split to train on"),
    Setting("val_split", "dataset", \.data.valSplit, "split to validate on"),
    Setting("num_classes", "dataset", \.data.numClasses, "number of classes; null: the dataset's"),
    Setting("ignore_label", "dataset", \.data.ignoreLabel, "label value of void pixels, ignored by the loss and the metrics"),

    Setting("model", "model", \.model.name, "model name, DECODER_ENCODER (`segkit models` lists them)"),
    Setting("output_stride", "model", \.model.outputStride, "input/feature resolution ratio, 8, 16 or 32; null: the model's"),
    Setting("atrous_rates", "model", \.model.atrousRates, "ASPP dilation rates; null: [6, 12, 18] at stride 16, [12, 24, 36] at 8"),
    Setting("auxiliary_head", "model", \.model.auxiliaryHead, "add an auxiliary FCN head; null: the model's default"),
    Setting("separable_conv", "model", \.model.separableConv, "depthwise-separable convolutions in ASPP and the decoder"),

    Setting("train_crop_size", "input", \.input.trainCropSize, "training crop [height, width]"),
    Setting("train_batch_size", "input", \.input.trainBatchSize, "images per batch"),
    Setting("min_scale_factor", "input", \.input.minScaleFactor, "smallest random rescaling of training images"),
    Setting("max_scale_factor", "input", \.input.maxScaleFactor, "largest random rescaling of training images"),
    Setting("scale_factor_step_size", "input", \.input.scaleFactorStepSize, "rescaling step between min and max; 0: any value"),
    Setting("flip_probability", "input", \.input.flipProbability, "probability of a left-right flip of a training image"),
    Setting("rotation_degrees", "input", \.input.rotationDegrees,
            "largest random rotation of a training image, degrees either way (OSVOS: 30); labels by nearest neighbour"),
    Setting("shuffle", "input", \.input.shuffle, "shuffle the training split each epoch (false: file order)"),

    Setting("training_number_of_steps", "length", \.schedule.trainingNumberOfSteps, "optimizer steps to train (unless epochs is set)"),
    Setting("epochs", "length", \.schedule.epochs, "passes over the training split; overrides training_number_of_steps"),

    Setting("learning_policy", "learning rate", \.schedule.learningPolicy, "learning-rate decay"),
    Setting("base_learning_rate", "learning rate", \.schedule.baseLearningRate, "initial learning rate"),
    Setting("learning_power", "learning rate", \.schedule.learningPower, "exponent of the poly policy"),
    Setting("end_learning_rate", "learning rate", \.schedule.endLearningRate, "final rate of the poly and cosine policies"),
    Setting("learning_rate_decay_factor", "learning rate", \.schedule.learningRateDecayFactor, "step policy: multiplier at each decay"),
    Setting("learning_rate_decay_step", "learning rate", \.schedule.learningRateDecayStep, "step policy: steps between decays"),
    Setting("learning_rate_boundaries", "learning rate", \.schedule.learningRateBoundaries, "piecewise policy: steps where the rate changes"),
    Setting("learning_rate_values", "learning rate", \.schedule.learningRateValues, "piecewise policy: rates, one more than boundaries"),
    Setting("slow_start_step", "learning rate", \.schedule.slowStartStep, "steps trained at slow_start_learning_rate first"),
    Setting("slow_start_learning_rate", "learning rate", \.schedule.slowStartLearningRate, "learning rate during slow start"),
    Setting("warmup_steps", "learning rate", \.schedule.warmupSteps, "steps of linear warm-up of the decayed rate"),
    Setting("warmup_start_factor", "learning rate", \.schedule.warmupStartFactor, "fraction of the rate at the start of warm-up"),

    Setting("optimizer", "optimizer", \.optimizer.kind, "optimizer"),
    Setting("momentum", "optimizer", \.optimizer.momentum, "SGD momentum"),
    Setting("nesterov", "optimizer", \.optimizer.nesterov, "Nesterov momentum (SGD)"),
    Setting("weight_decay", "optimizer", \.optimizer.weightDecay, "weight decay (L2 for SGD and Adam, decoupled for AdamW)"),
    Setting("adam_beta1", "optimizer", \.optimizer.adamBeta1, "Adam's first-moment decay"),
    Setting("adam_beta2", "optimizer", \.optimizer.adamBeta2, "Adam's second-moment decay"),
    Setting("adam_epsilon", "optimizer", \.optimizer.adamEpsilon, "Adam's epsilon"),
    Setting("gradient_accumulation", "optimizer", \.optimizer.gradientAccumulation, "batches whose gradients make one optimizer step"),
    Setting("gradient_clip_norm", "optimizer", \.optimizer.gradientClipNorm, "clip the gradients' global 2-norm to this before each step; null: no clipping"),
    Setting("no_decay_on_bias_and_norm", "optimizer", \.optimizer.noDecayOnBiasAndNorm, "no weight decay on biases and normalisation parameters"),

    Setting("initial_checkpoint", "initialisation", \.initialization.initialCheckpoint, "weights to start from (DeepLab's tf_initial_checkpoint)"),
    Setting("initialize_last_layer", "initialisation", \.initialization.initializeLastLayer, "also load the last layers from initial_checkpoint"),
    Setting("last_layers_contain_logits_only", "initialisation", \.initialization.lastLayersContainLogitsOnly,
            "the last layers are the logits only (else also ASPP, image pooling and decoder)"),
    Setting("fine_tune_batch_norm", "initialisation", \.initialization.fineTuneBatchNorm,
            "update batch-norm statistics (false: normalise with the running ones and keep them; scale and offset still train, as in DeepLab)"),
    Setting("sync_batch_norm", "initialisation", \.initialization.syncBatchNorm,
            "data-parallel runs: batch-norm statistics over every process's batch (PyTorch's SyncBatchNorm), not each process's own"),
    Setting("last_layer_gradient_multiplier", "initialisation", \.initialization.lastLayerGradientMultiplier,
            "learning-rate multiplier of the last layers"),
    Setting("reference_learning_rates", "initialisation", \.initialization.referenceLearningRates,
            "the model's reference per-layer learning rates (OSVOS models: biases ×2, side scores ×0.1, fuse ×0.01, weight decay on weights only)"),

    Setting("loss", "loss", \.loss.kind, "auto (cross_entropy for semantic, balanced_bce for foreground), cross_entropy, dice, lovasz or balanced_bce"),
    Setting("top_k_percent_pixels", "loss", \.semantic.topKPercentPixels, "fraction of hardest pixels kept in the cross-entropy", task: .semantic),
    Setting("hard_example_mining_step", "loss", \.semantic.hardExampleMiningStep,
            "steps over which the kept fraction falls from 1 to top_k_percent_pixels", task: .semantic),
    Setting("aux_loss_weight", "loss", \.loss.auxLossWeight, "weight of the auxiliary head's loss"),
    Setting("class_weights", "loss", \.semantic.classWeights, "per-class cross-entropy weights; null: all 1", task: .semantic),
    Setting("upsample_logits", "loss", \.loss.upsampleLogits, "upsample logits to the label size (else downsample the labels)"),
    Setting("balanced_loss_normalization", "loss", \.foreground.balancedLossNormalization,
            "balanced_bce: sum (OSVOS-TensorFlow), per_pixel or per_image (OSVOS-PyTorch's size/batch average)", task: .foreground),
    Setting("side_loss_weight", "loss", \.foreground.sideLossWeight,
            "weight of each side output's loss (OSVOS's deep supervision; 0: the fused output only)", task: .foreground),
    Setting("side_loss_schedule", "loss", \.foreground.sideLossSchedule,
            "how side_loss_weight changes: constant, linear (to 0 at the last step) or piecewise", task: .foreground),
    Setting("side_loss_boundaries", "loss", \.foreground.sideLossBoundaries,
            "piecewise side weights: steps where the factor changes", task: .foreground),
    Setting("side_loss_values", "loss", \.foreground.sideLossValues,
            "piecewise side weights: factors, one more than boundaries (OSVOS-TensorFlow: [1, 0.5, 0] at [15000, 30000])",
            task: .foreground),

    Setting("maskrnn_variant", "MaskRNN (maskrnn_* models)", \.maskRNN.variant,
            "what trains: appearance or flow (that stream's losses only), streams (both fused, no localiser) or full (MaskRNN)",
            task: .foreground),
    Setting("fusion", "MaskRNN (maskrnn_* models)", \.maskRNN.fusion,
            "the streams' logits combined: sum (streams trained apart, nothing to learn) or learned (a 1x1 convolution)", task: .foreground),
    Setting("localisation", "MaskRNN (maskrnn_* models)", \.maskRNN.localisation,
            "the object localiser: the warped mask's box refined; logits outside it are background", task: .foreground),
    Setting("proposal_enlargement", "MaskRNN (maskrnn_* models)", \.maskRNN.proposalEnlargement,
            "the warped mask's bounding box enlarged by this into the localiser's proposal (1 to 4)", task: .foreground),
    Setting("localiser_gate_enlargement", "MaskRNN (maskrnn_* models)", \.maskRNN.localiserGateEnlargement,
            "the localiser's refined box enlarged by this about its centre before logits outside it become background (1 to 4; 1: the box itself)",
            task: .foreground),
    Setting("localiser_features", "MaskRNN (maskrnn_* models)", \.maskRNN.localiserFeatures,
            "the appearance stream's features the localiser pools: layer4 (deepest; ResNet stride 32) or layer3 (the level before, twice the resolution)",
            task: .foreground),
    Setting("flow_preset", "MaskRNN (maskrnn_* models)", \.maskRNN.flowPreset,
            "DIS preset of the flows cached in DATASET/FlowCache: ultrafast, fast or medium", task: .foreground),
    Setting("flow_method", "MaskRNN (maskrnn_* models)", \.maskRNN.flowMethod,
            "how flows are computed: dis (with flow_preset), flownet2s or flownets_thin (with flow_weights), "
              + "or exact (the synthetic generator's Flow/480p and BackwardFlow/480p)", task: .foreground),
    Setting("flow_weights", "MaskRNN (maskrnn_* models)", \.maskRNN.flowWeights,
            "the flow network's weights for flow_method flownet2s or flownets_thin", task: .foreground),
    Setting("perturbation_radius", "MaskRNN (maskrnn_* models)", \.maskRNN.perturbationRadius,
            "previous masks grown or shrunk by up to this many pixels", task: .foreground),
    Setting("perturbation_shift", "MaskRNN (maskrnn_* models)", \.maskRNN.perturbationShift,
            "previous masks shifted by up to this many pixels each way", task: .foreground),
    Setting("perturbation_drop", "MaskRNN (maskrnn_* models)", \.maskRNN.perturbationDrop,
            "probability that a part of the previous mask is dropped", task: .foreground),
    Setting("box_loss_weight", "MaskRNN (maskrnn_* models)", \.maskRNN.boxLossWeight,
            "weight of the localiser's smooth-L1 box loss", task: .foreground),

    Setting("flow_loss_weights", "loss", \.flow.lossWeights,
            "weights of the end-point errors at 1/4, 1/8, 1/16, 1/32 and 1/64 of the input (FlowNet's)", task: .flow),
    Setting("segmentation_run", "loss", \.flow.segmentationRun,
            "dataset cityscapes or camvid: train the flow path end to end, warping this run's key-frame logits to its own output on the current frame",
            task: .flow),
    Setting("max_key_distance", "loss", \.flow.maximumKeyDistance, "dataset cityscapes or camvid: keys up to this many frames before the current one", task: .flow),
    Setting("flow_input_scale", "loss", \.flow.inputScale,
            "dataset cityscapes or camvid: frames resized by this for the flow network (DVSNet: 0.5; `segkit dvs` reads it from the run)", task: .flow),
    Setting("warp_at", "loss", \.flow.warpAt, "dataset cityscapes or camvid: warp the key logits at the output size with the flow upsampled (output, DVSNet's finer-grid order, the default) or resize them down to the flow's grid (flow)", task: .flow),

    Setting("num_frames", "XMem (task memory)", \.memory.numFrames, "frames per training clip (XMem: 8 on video, 3 on static images)", task: .memory),
    Setting("num_ref_frames", "XMem (task memory)", \.memory.numRefFrames,
            "memory frames each segmented frame reads at most: the first and others at random (XMem: 3 on video, 2 on static images)", task: .memory),
    Setting("max_num_obj", "XMem (task memory)", \.memory.maxNumObj, "objects per clip at most (XMem: 3 on video, 1 on static images)", task: .memory),
    Setting("deep_update_prob", "XMem (task memory)", \.memory.deepUpdateProb, "probability that a memory frame's value encoder updates the hidden state", task: .memory),
    Setting("start_warm", "XMem (task memory)", \.memory.startWarm, "step where the bootstrapped cross-entropy starts keeping fewer pixels", task: .memory),
    Setting("end_warm", "XMem (task memory)", \.memory.endWarm, "step from which it keeps the hardest 15%", task: .memory),
    Setting("max_jump_values", "XMem (task memory)", \.memory.maxJumpValues,
            "largest frame jump within a video clip, the first value then one per fraction in max_jump_fractions", task: .memory),
    Setting("max_jump_fractions", "XMem (task memory)", \.memory.maxJumpFractions, "fractions of training where the next max_jump_values entry starts", task: .memory),
    Setting("size", "XMem inference", \.memory.inference.size, "frames' shorter side; null keeps their size", task: .memory),
    Setting("mem_every", "XMem inference", \.memory.inference.memEvery, "a memory frame every this many frames", task: .memory),
    Setting("top_k", "XMem inference", \.memory.inference.topK, "memory elements each query reads", task: .memory),
    Setting("max_mid_term_frames", "XMem inference", \.memory.inference.maxMidTermFrames, "working-memory frames that trigger consolidation", task: .memory),
    Setting("min_mid_term_frames", "XMem inference", \.memory.inference.minMidTermFrames, "working-memory frames kept after consolidation", task: .memory),
    Setting("num_prototypes", "XMem inference", \.memory.inference.prototypes, "long-term elements made by one consolidation", task: .memory),
    Setting("max_long_term_elements", "XMem inference", \.memory.inference.maxLongTermElements, "cap on long-term memory", task: .memory),
    Setting("long_term", "XMem inference", \.memory.inference.longTerm, "long-term memory (false: working memory only)", task: .memory),

    Setting("eval_crop_size", "evaluation", \.evaluation.evalCropSize, "evaluation crop [height, width]; null: whole images"),
    Setting("eval_scales", "evaluation", \.evaluation.evalScales, "input scales averaged at evaluation"),
    Setting("add_flipped_images", "evaluation", \.evaluation.addFlippedImages, "also evaluate left-right flipped inputs"),

    Setting("train_logdir", "run", \.run.trainLogdir, "run folder; null: chosen by the command"),
    Setting("seed", "run", \.run.seed, "random seed of initialisation, shuffling and augmentation"),
    Setting("device", "run", \.run.device, "auto, cpu, cuda, cuda:N or mps"),
    Setting("threads", "run", \.run.threads, "CPU threads for libtorch; 0: its default"),
    Setting("workers", "run", \.run.workers, "data-loading threads"),
    Setting("log_interval", "run", \.run.logInterval, "steps between log lines and TensorBoard scalars"),
    Setting("val_interval", "run", \.run.valInterval, "steps between validations; 0: at the end only"),
    Setting("val_samples", "run", \.run.valSamples, "validation images used; 0: the whole split"),
    Setting("checkpoint_interval", "run", \.run.checkpointInterval, "steps between checkpoints"),
    Setting("keep_checkpoints", "run", \.run.keepCheckpoints, "checkpoints kept, newest first; 0: all"),
    Setting("save_summaries_images", "run", \.run.saveSummariesImages, "log input, prediction and ground-truth images to TensorBoard"),
    Setting("float64", "run", \.run.float64, "semantic and foreground training in float64 throughout: a numerics check, several times slower"),
  ]

  /// DeepLab flag names that SegKit spells differently, for "did you mean".
  static let aliases = [
    "tf_initial_checkpoint": "initial_checkpoint", "log_steps": "log_interval", "crop_size": "train_crop_size",
    "batch_size": "train_batch_size", "num_steps": "training_number_of_steps", "learning_rate": "base_learning_rate",
    "lr": "base_learning_rate", "aux_weight": "aux_loss_weight", "model_variant": "model",
  ]
}
