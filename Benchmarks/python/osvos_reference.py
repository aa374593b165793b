# OSVOS built in PyTorch from its description, independently of SegKit: the parity
# tests' oracle (SegKitTestSupport's OracleModels.osvos reads this file) and the
# fine-tuning benchmark's network. VGG16: OSVOS-PyTorch's stages (ceil-mode pools, no
# pool5) and keys. ResNet-18: torchvision's resnet18 under `backbone.` (its classifier
# removed), layer1-layer4 as the side levels. Each side level: a linear 3x3 convolution
# to 16 channels, a 1x1 side score, bilinear-shaped transposed convolutions of stride s
# and kernel 2s (frozen), centre crops (an odd excess cut at the bottom/right), and a
# 1x1 fuse over the four 16-channel maps. forward returns [fuse, side2, ..., side5].
import torch
import torch.nn as nn
import torchvision


class OracleOSVOS(nn.Module):
    def __init__(self, in_channels=3, encoder="vgg16"):
        super().__init__()
        vgg = encoder == "vgg16"
        channels, strides = ([128, 256, 512, 512], [2, 4, 8, 16]) if vgg else ([64, 128, 256, 512], [4, 8, 16, 32])
        # OSVOS-PyTorch's registration order, which its state dict's key order follows.
        self.upscale = nn.ModuleList(nn.ConvTranspose2d(16, 16, 2 * s, stride=s, bias=False) for s in strides)
        self.upscale_ = nn.ModuleList(nn.ConvTranspose2d(1, 1, 2 * s, stride=s, bias=False) for s in strides)
        for m in list(self.upscale) + list(self.upscale_):
            m.weight.requires_grad_(False)
        if vgg:
            widths = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]]
            self.stages, c = nn.ModuleList(), in_channels
            for s, ws in enumerate(widths):
                layers = [] if s == 0 else [nn.MaxPool2d(2, 2, ceil_mode=True)]
                for w in ws:
                    layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU()]
                    c = w
                self.stages.append(nn.Sequential(*layers))
        else:
            self.backbone = torchvision.models.resnet18(weights=None)
            self.backbone.fc = nn.Identity()
        self.encoder = encoder
        self.side_prep = nn.ModuleList(nn.Conv2d(c, 16, 3, padding=1) for c in channels)
        self.score_dsn = nn.ModuleList(nn.Conv2d(16, 1, 1) for _ in channels)
        self.fuse = nn.Conv2d(64, 1, 1)

    def levels(self, x):
        if self.encoder == "vgg16":
            x = self.stages[0](x)
            layers = self.stages[1:]
        else:
            b = self.backbone
            x = b.maxpool(b.relu(b.bn1(b.conv1(x))))
            layers = [b.layer1, b.layer2, b.layer3, b.layer4]
        for layer in layers:
            x = layer(x)
            yield x

    def forward(self, x):
        h, w = x.shape[-2:]

        def crop(t):
            top, left = (t.shape[-2] - h) // 2, (t.shape[-1] - w) // 2
            return t[..., top:top + h, left:left + w]

        sides, scores = [], []
        for i, level in enumerate(self.levels(x)):
            p = self.side_prep[i](level)
            sides.append(crop(self.upscale[i](p)))
            scores.append(crop(self.upscale_[i](self.score_dsn[i](p))))
        return [self.fuse(torch.cat(sides, 1))] + scores
