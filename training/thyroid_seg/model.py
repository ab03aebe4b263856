"""Improved DeepLabV3+ (MobileNetV2, DS-ASPP + PPM, attention, multi-level skips) and the baseline.

Both take a 1-channel image [N,1,H,W] and return one logit channel at the input size.
"""
from __future__ import annotations

from dataclasses import dataclass, asdict, field
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F


def _make_divisible(v: float, divisor: int = 8) -> int:
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


class ConvBNReLU6(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, groups: int = 1):
        pad = dilation * (k - 1) // 2
        super().__init__(
            nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand (ReLU6) -> 3x3 depthwise (ReLU6) -> 1x1 linear bottleneck."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int, dilation: int = 1):
        super().__init__()
        hidden = cin * expand
        self.use_res = stride == 1 and cin == cout
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU6(cin, hidden, 1))
        layers += [
            ConvBNReLU6(hidden, hidden, 3, stride, dilation, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2Encoder(nn.Module):
    """MobileNetV2 with output stride 16: the last two stages keep stride 1 and dilate by 2.

    Returns features at 1/2, 1/4, 1/8 and 1/16 of the input.
    """

    # t (expansion), c (channels), n (repeats), s (stride)
    CFG = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]

    def __init__(self, in_ch: int = 1, width: float = 1.0, output_stride: int = 16):
        super().__init__()
        c0 = _make_divisible(32 * width)
        self.stem = ConvBNReLU6(in_ch, c0, 3, 2)
        blocks: list[nn.Module] = []
        cin, current_stride, dilation = c0, 2, 1
        self.taps: dict[int, int] = {}  # block index -> output stride tapped after it
        self.channels: dict[int, int] = {}
        for t, c, n, s in self.CFG:
            cout = _make_divisible(c * width)
            for i in range(n):
                stride = s if i == 0 else 1
                if stride == 2 and current_stride >= output_stride:
                    # output stride 16 for segmentation: trade the stride for dilation (32 = ImageNet layout)
                    dilation *= 2
                    stride = 1
                block_dilation = dilation
                blocks.append(InvertedResidual(cin, cout, stride, t, block_dilation))
                current_stride *= stride
                cin = cout
            self.channels[current_stride] = cout
            self.taps[len(blocks) - 1] = current_stride
        self.blocks = nn.ModuleList(blocks)
        self.out_channels = cin

    def forward(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        x = self.stem(x)
        feats: dict[int, torch.Tensor] = {}
        for i, b in enumerate(self.blocks):
            x = b(x)
            if i in self.taps:
                feats[self.taps[i]] = x  # later stages at the same stride overwrite: deepest wins
        return feats


class DSConv(nn.Sequential):
    """Depthwise-separable 3x3 conv: depthwise (dilated) + pointwise, each BN + ReLU."""

    def __init__(self, cin: int, cout: int, dilation: int = 1):
        super().__init__(
            nn.Conv2d(cin, cin, 3, 1, dilation, dilation=dilation, groups=cin, bias=False),
            nn.BatchNorm2d(cin),
            nn.ReLU(inplace=True),
            nn.Conv2d(cin, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


def conv_bn_relu(cin: int, cout: int, k: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, 1, dilation * (k - 1) // 2, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class ImagePooling(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.proj = conv_bn_relu(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.proj(F.adaptive_avg_pool2d(x, 1))
        return y.expand(-1, -1, x.shape[2], x.shape[3])


class ASPP(nn.Module):
    """1x1 branch, three dilated 3x3 branches (depthwise-separable or plain), image pooling."""

    def __init__(self, cin: int, cout: int, rates: tuple[int, ...] = (6, 12, 18), separable: bool = True):
        super().__init__()
        branches: list[nn.Module] = [conv_bn_relu(cin, cout, 1)]
        for r in rates:
            branches.append(DSConv(cin, cout, r) if separable else conv_bn_relu(cin, cout, 3, r))
        branches.append(ImagePooling(cin, cout))
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [b(x) for b in self.branches]


def _pool_matrix(size: int, bins: int) -> torch.Tensor:
    """Rows average the windows adaptive_avg_pool uses: [floor(i*n/b), ceil((i+1)*n/b))."""
    m = torch.zeros(bins, size)
    for i in range(bins):
        start, end = (i * size) // bins, -((-(i + 1) * size) // bins)
        m[i, start:end] = 1.0 / (end - start)
    return m


def adaptive_avg_pool_exportable(x: torch.Tensor, bins: int) -> torch.Tensor:
    """adaptive_avg_pool2d(x, bins) written as two matrix products.

    Numerically the same, but it exports to ONNX for any feature size (the exporter refuses
    adaptive pooling whose output size does not divide the input, e.g. 3 or 6 bins on 16x16).
    """
    h, w = int(x.shape[2]), int(x.shape[3])
    if h % bins == 0 and w % bins == 0:
        return F.adaptive_avg_pool2d(x, bins)
    ph = _pool_matrix(h, bins).to(x)
    pw = _pool_matrix(w, bins).to(x)
    return torch.matmul(torch.matmul(ph, x), pw.t())


class PPM(nn.Module):
    """Pyramid Pooling Module: average pooling to bins x bins, 1x1 projection, upsampled back."""

    def __init__(self, cin: int, cout: int, bins: tuple[int, ...] = (1, 2, 3, 6)):
        super().__init__()
        self.bins = bins
        self.projs = nn.ModuleList(conv_bn_relu(cin, cout, 1) for _ in bins)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, w = x.shape[2], x.shape[3]
        return [
            F.interpolate(p(adaptive_avg_pool_exportable(x, b)), size=(h, w), mode="bilinear", align_corners=False)
            for b, p in zip(self.bins, self.projs)
        ]


class ChannelAttention(nn.Module):
    """CBAM-style channel attention: max+avg pooled descriptors through a shared MLP, sigmoid."""

    def __init__(self, ch: int, reduction: int = 8):
        super().__init__()
        hidden = max(ch // reduction, 4)
        self.mlp = nn.Sequential(nn.Conv2d(ch, hidden, 1), nn.ReLU(inplace=True), nn.Conv2d(hidden, ch, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(a)


class SpatialAttention(nn.Module):
    """CBAM-style spatial attention: max+avg over channels, 7x7 conv, sigmoid."""

    def __init__(self, kernel: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        desc = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(desc))


def _up(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=ref.shape[2:], mode="bilinear", align_corners=False)


@dataclass
class ModelConfig:
    arch: Literal["improved", "deeplabv3plus"] = "improved"
    width: float = 1.0
    aspp: Literal["dsconv", "plain"] = "dsconv"
    ppm: bool = True
    attention: bool = True
    skips: bool = True
    head_ch: int = 128
    dec_ch: int = 64
    reduction: int = 8
    rates: tuple[int, ...] = field(default=(6, 12, 18))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["rates"] = list(self.rates)
        return d


class ImprovedDeepLabV3Plus(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = MobileNetV2Encoder(1, cfg.width)
        ch = self.encoder.channels
        c16, c8, c4, c2 = ch[16], ch[8], ch[4], ch[2]
        C, D = cfg.head_ch, cfg.dec_ch
        self.aspp = ASPP(c16, C, cfg.rates, separable=cfg.aspp == "dsconv")
        n_ctx = 5 * C
        if cfg.ppm:
            self.ppm = PPM(c16, C // 4)
            n_ctx += 4 * (C // 4)
        self.fuse_ctx = conv_bn_relu(n_ctx, C, 1)
        self.proj4 = conv_bn_relu(c4, D // 2, 1)
        if cfg.skips:
            # vertical path: 1/16 -> 1/8 -> 1/4
            self.proj16 = conv_bn_relu(c16, D, 1)
            self.ca16 = ChannelAttention(D, cfg.reduction) if cfg.attention else nn.Identity()
            self.proj8 = conv_bn_relu(c8, D // 2, 1)
            self.sa8 = SpatialAttention() if cfg.attention else nn.Identity()
            self.fuse8 = DSConv(D + D // 2, D)
            self.sa4 = SpatialAttention() if cfg.attention else nn.Identity()
            self.fuse4 = DSConv(D + D // 2, D)
            # horizontal path: context at 1/4 joined with the vertical path
            self.fuse_h = DSConv(C + D, D)
            # secondary fusion at 1/2
            self.proj2 = conv_bn_relu(c2, D // 4, 1)
            self.sa2 = SpatialAttention() if cfg.attention else nn.Identity()
            self.fuse2 = DSConv(D + D // 4, D // 2)
            self.head = nn.Conv2d(D // 2, 1, 1)
        else:
            # the plain DeepLabV3+ decoder shape (context + 1/4 features), kept light
            self.fuse_h = DSConv(C + D // 2, D)
            self.head = nn.Conv2d(D, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encoder(x)
        f16, f8, f4, f2 = f[16], f[8], f[4], f[2]
        ctx = self.aspp(f16)
        if self.cfg.ppm:
            ctx = ctx + self.ppm(f16)
        ctx = self.fuse_ctx(torch.cat(ctx, dim=1))
        if not self.cfg.skips:
            p4 = self.proj4(f4)
            y = self.fuse_h(torch.cat([_up(ctx, p4), p4], dim=1))
            return _up(self.head(y), x)
        v = self.ca16(self.proj16(f16))
        s8 = self.sa8(self.proj8(f8))
        v = self.fuse8(torch.cat([_up(v, s8), s8], dim=1))
        s4 = self.sa4(self.proj4(f4))
        v = self.fuse4(torch.cat([_up(v, s4), s4], dim=1))
        h = self.fuse_h(torch.cat([_up(ctx, v), v], dim=1))
        s2 = self.sa2(self.proj2(f2))
        y = self.fuse2(torch.cat([_up(h, s2), s2], dim=1))
        return _up(self.head(y), x)


class DeepLabV3Plus(nn.Module):
    """The standard DeepLabV3+ with MobileNetV2 (full 3x3 ASPP at 256 ch, 1/4 decoder): the baseline."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = MobileNetV2Encoder(1, cfg.width)
        ch = self.encoder.channels
        self.aspp = ASPP(ch[16], 256, (6, 12, 18), separable=False)
        self.aspp_proj = nn.Sequential(conv_bn_relu(5 * 256, 256, 1), nn.Dropout(0.1))
        self.low = conv_bn_relu(ch[4], 48, 1)
        self.decoder = nn.Sequential(conv_bn_relu(256 + 48, 256, 3), conv_bn_relu(256, 256, 3))
        self.head = nn.Conv2d(256, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encoder(x)
        a = self.aspp_proj(torch.cat(self.aspp(f[16]), dim=1))
        low = self.low(f[4])
        y = self.decoder(torch.cat([_up(a, low), low], dim=1))
        return _up(self.head(y), x)


def build_model(cfg: ModelConfig) -> nn.Module:
    if cfg.arch == "deeplabv3plus":
        return DeepLabV3Plus(cfg)
    return ImprovedDeepLabV3Plus(cfg)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, size: int = 512) -> int:
    """Multiply-accumulates of conv and linear layers for one [1,1,size,size] frame."""
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out):
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def linear_hook(m: nn.Linear, _inp, out):
        nonlocal total
        total += out.numel() * m.in_features

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 1, size, size))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return total
