import SegKitTensor

/// PyTorch models the oracle builds itself, written from their descriptions, for
/// parity tests of more than one target.
public enum OracleModels {
  /// OSVOS (class `OracleOSVOS`): VGG16 stages with ceil-mode pools, linear side
  /// preparation, side scores, transposed-convolution upsampling, centre crops and
  /// the fuse, under OSVOS-PyTorch's keys; `forward` returns [fuse, side2…side5].
  public static let osvos = #"""
    class OracleOSVOS(nn.Module):
        def __init__(self, in_channels=3):
            super().__init__()
            widths = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
            self.upscale, self.upscale_ = nn.ModuleList(), nn.ModuleList()
            self.stages, self.side_prep, self.score_dsn = nn.ModuleList(), nn.ModuleList(), nn.ModuleList()
            c = in_channels
            for s, ws in enumerate(widths):
                layers = [] if s == 0 else [nn.MaxPool2d(2, 2, ceil_mode=True)]
                for w in ws:
                    layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU()]
                    c = w
                self.stages.append(nn.Sequential(*layers))
                if s > 0:
                    self.side_prep.append(nn.Conv2d(c, 16, 3, padding=1))
                    self.score_dsn.append(nn.Conv2d(16, 1, 1))
                    self.upscale.append(nn.ConvTranspose2d(16, 16, 2 ** (s + 1), stride=2 ** s, bias=False))
                    self.upscale_.append(nn.ConvTranspose2d(1, 1, 2 ** (s + 1), stride=2 ** s, bias=False))
            self.fuse = nn.Conv2d(64, 1, 1)

        def forward(self, x):
            h, w = x.shape[-2:]
            def crop(t):
                top, left = (t.shape[-2] - h) // 2, (t.shape[-1] - w) // 2
                return t[..., top:top + h, left:left + w]
            x = self.stages[0](x)
            sides, scores = [], []
            for i in range(4):
                x = self.stages[i + 1](x)
                p = self.side_prep[i](x)
                sides.append(crop(self.upscale[i](p)))
                scores.append(crop(self.upscale_[i](self.score_dsn[i](p))))
            return [self.fuse(torch.cat(sides, 1))] + scores
    """#

  /// Redraws a state dict's entries (all but those `keep` names) from N(0, 2 / fan-in):
  /// OSVOS's own N(0, 0.001) initialisation makes its outputs vanish, which would let
  /// any parity test pass.
  public static func drawOrdinaryWeights(_ entries: [(String, Tensor)], keep: (String) -> Bool) throws {
    try Torch.withNoGrad {
      for (name, tensor) in entries where !keep(name) {
        let fanIn = tensor.rank == 4 ? tensor.shape[1] * tensor.shape[2] * tensor.shape[3] : 64
        try tensor.copy_(try Tensor.randn(tensor.shape) * (2 / Double(fanIn)).squareRoot())
      }
    }
  }
}
