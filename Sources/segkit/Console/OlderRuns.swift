import Foundation
import SegKitInference
import SegKitTraining

/// The one place inference meets the training configuration: runs made before model.json
/// carried `inference` keep working by reading their config.yaml once, here. Everything
/// else reads `inferenceDefaults(of:)` and never the YAML.
func inferenceDefaults(of run: RunLayout) throws -> ModelManifest.InferenceDefaults {
  if FileManager.default.fileExists(atPath: run.manifestURL.path), let defaults = try run.manifest().inference { return defaults }
  guard FileManager.default.fileExists(atPath: run.configURL.path) else { return ModelManifest.InferenceDefaults() }
  do {
    return try TrainingConfig.resolve(file: run.configURL).inferenceDefaults
  } catch let error as TrainingError {
    throw CommandError(error.message)
  }
}
