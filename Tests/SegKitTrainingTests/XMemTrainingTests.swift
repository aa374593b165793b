import Foundation
import SegKitModels
import SegKitTestSupport
import SegKitTraining
import XCTest

/// XMem's training pass and losses against the oracle's (written from XMem's trainer and
/// losses, and checked against them): the same weights, clips, memory-frame choices and
/// deep updates; every frame's logits, every loss term and the gradients they give,
/// before, during and after the bootstrapped cross-entropy's warm-up.
final class XMemTrainingTests: XCTestCase {
  func testClipPassLossesAndGradientsMatchXMems() throws {
    let folder = try Oracle.temporaryDirectory("xmem-train")
    defer { try? FileManager.default.removeItem(at: folder) }
    let (batch, length, size) = (2, 5, 64)
    // Frame 3 reads frames [0, 2] of clip 0 and [0, 1] of clip 1; frame 4 reads [0, 3] and [0, 1].
    let references: [Int: [[Int]]] = [3: [[0, 2], [0, 1]], 4: [[0, 3], [0, 1]]]
    let deepUpdates = [true, false, true]
    let steps = [5, 150, 400]  // before, inside and after the warm-up (100…300)
    let referenceText = references.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
    let oracle = try OracleTensors.run(try OracleModels.xmem() + "\n" + #"""
      net = OracleXMem()
      randomize(net, 9)
      torch.save(net.state_dict(), "\#(folder.path)/XMem.pth")
      net.eval()  # XMem trains with batch norm frozen
      B, T, S = \#(batch), \#(length), \#(size)
      frames = torch.randn(B, T, 3, S, S) * 0.8
      ys, xs = torch.meshgrid(torch.arange(S).float(), torch.arange(S).float(), indexing="ij")
      cls_gt = torch.zeros(B, T, 1, S, S, dtype=torch.int64)
      for b in range(B):
          for t in range(T):
              cls_gt[b, t, 0][((ys - 20 - 2 * t) / 12) ** 2 + ((xs - 22 - 3 * t) / 15) ** 2 < 1] = 1
              if b == 0:
                  cls_gt[b, t, 0][((ys - 44) / 10) ** 2 + ((xs - 40 + t) / 12) ** 2 < 1] = 2
      first = torch.stack([(cls_gt[:, 0, 0] == i + 1).float() for i in range(2)], 1).unsqueeze(1)
      selector = torch.tensor([[1.0, 1.0], [1.0, 0.0]])
      save("frames", frames); save("cls_gt", cls_gt[:, :, 0]); save("first", first[:, 0]); save("selector", selector)
      refs = {\#(referenceText)}
      for step in \#(steps):
          net.zero_grad()
          out = xmem_training_pass(net, frames, first, selector, 2, [\#(deepUpdates.map { $0 ? "True" : "False" }.joined(separator: ", "))], refs)
          losses = xmem_losses(out, cls_gt, [2, 1], step, 100, 300)
          losses["total_loss"].backward()
          for t in range(1, T):
              save(f"{step}/logits_{t}", out[f"logits_{t}"]); save(f"{step}/masks_{t}", out[f"masks_{t}"])
              save(f"{step}/ce_{t}", losses[f"ce_loss_{t}"]); save(f"{step}/dice_{t}", losses[f"dice_loss_{t}"])
          save(f"{step}/total", losses["total_loss"])
          for name, p in net.named_parameters():
              if name in ["key_encoder.conv1.weight", "value_encoder.conv1.weight", "decoder.pred.weight",
                          "value_encoder.hidden_reinforce.transform.weight", "decoder.hidden_update.transform.weight",
                          "key_proj.key_proj.weight", "key_proj.d_proj.weight", "key_proj.e_proj.weight"]:
                  save(f"{step}/grad/{name}", p.grad)
      """#)
    var entries: [String: Tensor] = [:]
    for (name, tensor) in try StateDict.load(contentsOf: folder.appendingPathComponent("XMem.pth")) { entries[name] = tensor }
    let network = try XMem(stateDict: entries).eval()  // as XMem trains: batch norm frozen
    let pass = XMemClipPass(network: network, referenceFrames: 2)
    let loss = XMemLoss(startWarm: 100, endWarm: 300)
    let parameters = Dictionary(uniqueKeysWithValues: network.namedParameters())
    for step in steps {
      try network.zeroGrad()
      let frames = try pass(frames: try oracle["frames"], firstMasks: try oracle["first"], selector: try oracle["selector"],
                            deepUpdates: deepUpdates, referenceIndices: { references[$0]! })
      let terms = try loss(frames, classes: try oracle["cls_gt"], objects: [2, 1], step: step)
      try terms.total.backward()
      for (index, frame) in frames.enumerated() {
        let t = index + 1
        try assertMatchesOracle(frame.logits, try oracle["\(step)/logits_\(t)"], rtol: 1e-4, atol: 1e-4, "step \(step) frame \(t) logits")
        try assertMatchesOracle(frame.masks, try oracle["\(step)/masks_\(t)"], rtol: 1e-4, atol: 1e-5, "step \(step) frame \(t) masks")
        let parts = Dictionary(uniqueKeysWithValues: terms.parts.map { ($0.name, $0.value) })
        try assertMatchesOracle(parts["ce_\(t)"], try oracle["\(step)/ce_\(t)"], rtol: 1e-4, atol: 1e-5, "step \(step) ce_\(t)")
        try assertMatchesOracle(parts["dice_\(t)"], try oracle["\(step)/dice_\(t)"], rtol: 1e-4, atol: 1e-5, "step \(step) dice_\(t)")
      }
      try assertMatchesOracle(terms.total, try oracle["\(step)/total"], rtol: 1e-4, atol: 1e-5, "step \(step) total")
      for (name, expected) in try oracle.entries(under: "\(step)/grad") {
        try assertMatchesOracle(try XCTUnwrap(parameters[name]?.grad, name), expected, rtol: 1e-3, atol: 1e-5, "step \(step) ∂/∂\(name)")
      }
    }
  }
}
