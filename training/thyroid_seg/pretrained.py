"""ImageNet (or PASCAL-DeepLab) MobileNetV2 weights from a TFLite file into the encoder.

The only pretrained weights reachable here are quantized TFLite files (../shared/pretrained, Apache-2.0).
`tflite` (pure-Python flatbuffer parser) reads them; no TensorFlow needed. Each conv's batch norm is
folded into its weight and bias, so the following BatchNorm starts as identity with beta = bias.

  python -m thyroid_seg.pretrained --tflite ../../shared/pretrained/coral-mobilenet-v2/tf2_mobilenet_v2_1.0_224_ptq.tflite
    (prints how many convs were loaded and checks the converted classifier against the TFLite interpreter)
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .model import ConvBNReLU6, InvertedResidual, MobileNetV2Encoder


@dataclass
class TfliteConv:
    name: str
    depthwise: bool
    weight: np.ndarray  # torch layout: [out, in, kh, kw] or [ch, 1, kh, kw]
    bias: np.ndarray
    stride: int


def _dequantize(tensor, buf_bytes: bytes, dtype) -> np.ndarray:
    q = np.frombuffer(buf_bytes, dtype=dtype).astype(np.float64).reshape(tensor.ShapeAsNumpy())
    qp = tensor.Quantization()
    if qp is None or qp.ScaleLength() == 0:
        return q.astype(np.float32)
    scale = qp.ScaleAsNumpy().astype(np.float64)
    zero = qp.ZeroPointAsNumpy().astype(np.float64) if qp.ZeroPointLength() else np.zeros_like(scale)
    if scale.size > 1:  # one scale per channel along quantized_dimension
        shape = [1] * q.ndim
        shape[qp.QuantizedDimension()] = scale.size
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((q - zero) * scale).astype(np.float32)


def read_tflite_convs(path: str | Path) -> list[TfliteConv]:
    """Every CONV_2D / DEPTHWISE_CONV_2D of the first subgraph, in execution order, dequantized."""
    import tflite  # imported here: only the converter needs it

    buf = Path(path).read_bytes()
    model = tflite.Model.GetRootAsModel(buf, 0)
    graph = model.Subgraphs(0)
    types = {tflite.TensorType.INT8: np.int8, tflite.TensorType.UINT8: np.uint8,
             tflite.TensorType.INT32: np.int32, tflite.TensorType.FLOAT32: np.float32}
    convs: list[TfliteConv] = []
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        if code not in (tflite.BuiltinOperator.CONV_2D, tflite.BuiltinOperator.DEPTHWISE_CONV_2D):
            continue
        wt, bt = graph.Tensors(op.Inputs(1)), graph.Tensors(op.Inputs(2))
        w = _dequantize(wt, model.Buffers(wt.Buffer()).DataAsNumpy().tobytes(), types[wt.Type()])
        b = _dequantize(bt, model.Buffers(bt.Buffer()).DataAsNumpy().tobytes(), types[bt.Type()])
        depthwise = code == tflite.BuiltinOperator.DEPTHWISE_CONV_2D
        opts = op.BuiltinOptions()
        if depthwise:
            o = tflite.DepthwiseConv2DOptions()
            o.Init(opts.Bytes, opts.Pos)
            w = w.transpose(3, 0, 1, 2)  # [1,kh,kw,C] -> [C,1,kh,kw]
        else:
            o = tflite.Conv2DOptions()
            o.Init(opts.Bytes, opts.Pos)
            w = w.transpose(0, 3, 1, 2)  # [O,kh,kw,I] -> [O,I,kh,kw]
        convs.append(TfliteConv(wt.Name().decode(), depthwise, np.ascontiguousarray(w), b, o.StrideH()))
    return convs


def _encoder_convs(enc: MobileNetV2Encoder) -> list[tuple[nn.Conv2d, nn.BatchNorm2d]]:
    """The encoder's (conv, bn) pairs in the order TFLite executes them: stem, then expand/depthwise/project."""
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d]] = [(enc.stem[0], enc.stem[1])]
    for block in enc.blocks:
        assert isinstance(block, InvertedResidual)
        layers = list(block.conv)
        for j, m in enumerate(layers):
            if isinstance(m, ConvBNReLU6):
                pairs.append((m[0], m[1]))
            elif isinstance(m, nn.Conv2d):
                pairs.append((m, layers[j + 1]))
    return pairs


def _set_conv(conv: nn.Conv2d, bn: nn.BatchNorm2d, src: TfliteConv, grey: bool) -> None:
    w = torch.from_numpy(src.weight)
    if grey and conv.in_channels == 1 and w.shape[1] == 3:
        w = w.sum(dim=1, keepdim=True)  # a grey image x on all three channels gives the same response
    if tuple(w.shape) != tuple(conv.weight.shape):
        raise ValueError(f"{src.name}: TFLite weight {tuple(w.shape)} does not fit conv {tuple(conv.weight.shape)}")
    with torch.no_grad():
        conv.weight.copy_(w)
        bn.weight.fill_(1.0)
        bn.bias.copy_(torch.from_numpy(src.bias))
        bn.running_mean.zero_()
        bn.running_var.fill_(1.0 - bn.eps)  # so that 1/sqrt(var + eps) is exactly 1


def load_encoder(enc: MobileNetV2Encoder, path: str | Path, grey: bool = True) -> dict:
    """Load the first convs of a TFLite MobileNetV2 into `enc`; returns what was loaded (for train.json)."""
    convs = read_tflite_convs(path)
    pairs = _encoder_convs(enc)
    if len(convs) < len(pairs):
        raise ValueError(f"{path}: {len(convs)} convs, the encoder needs {len(pairs)}")
    for (conv, bn), src in zip(pairs, convs):
        if (conv.groups > 1) != src.depthwise:
            raise ValueError(f"{src.name}: depthwise={src.depthwise} does not match conv groups={conv.groups}")
        _set_conv(conv, bn, src, grey)
    return {"file": Path(path).name, "convsLoaded": len(pairs), "convsInFile": len(convs)}


class MobileNetV2Classifier(nn.Module):
    """The ImageNet classifier around the encoder: used only to check the conversion against TFLite."""

    def __init__(self) -> None:
        super().__init__()
        self.encoder = MobileNetV2Encoder(3, 1.0, output_stride=32)
        self.last = ConvBNReLU6(320, 1280, 1)
        self.fc = nn.Conv2d(1280, 1001, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        f = self.encoder(x)[32]
        return F.adaptive_avg_pool2d(self.last(f), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x)).flatten(1)


def tf_same_padding(model: nn.Module) -> None:
    """TensorFlow pads stride-2 3x3 convs bottom/right only; mimic it for an exact comparison (even sizes)."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d) and m.stride == (2, 2) and m.kernel_size == (3, 3):
            m.padding = (0, 0)
            m.register_forward_pre_hook(lambda _m, inp: (F.pad(inp[0], (0, 1, 0, 1)),))


def load_classifier(path: str | Path) -> MobileNetV2Classifier:
    net = MobileNetV2Classifier()
    convs = read_tflite_convs(path)
    load_encoder(net.encoder, path, grey=False)
    n = len(_encoder_convs(net.encoder))
    _set_conv(net.last[0], net.last[1], convs[n], grey=False)
    with torch.no_grad():
        net.fc.weight.copy_(torch.from_numpy(convs[n + 1].weight))
        net.fc.bias.copy_(torch.from_numpy(convs[n + 1].bias))
    tf_same_padding(net)
    return net.eval()


def compare_with_tflite(path: str | Path, images: np.ndarray) -> dict:
    """Run the converted classifier and the TFLite interpreter on RGB float images in [-1, 1] [N,224,224,3].

    Returns the top-1 agreement, how often each side's top-1 is in the other's top 5, the mean top-5 overlap and the mean cosine of the 1001 logits/probabilities.
    """
    from ai_edge_litert.interpreter import Interpreter

    net = load_classifier(path)
    interp = Interpreter(model_path=str(path))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    top1, top1in5, top5, cos = [], [], [], []
    for img in images:
        x = img[None].astype(np.float32)
        if inp["dtype"] != np.float32:  # quantized input: q = x / scale + zero_point
            s, z = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / s + z), info.min, info.max).astype(inp["dtype"])
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        ref = interp.get_tensor(out["index"])[0].astype(np.float64)
        if out["dtype"] != np.float32:
            s, z = out["quantization"]
            ref = (ref - z) * s
        with torch.no_grad():
            ours = torch.softmax(net(torch.from_numpy(img).permute(2, 0, 1)[None].float()), 1)[0].numpy()
        r5, o5 = set(np.argsort(-ref)[:5]), set(np.argsort(-ours)[:5])
        top1.append(int(np.argmax(ref) == np.argmax(ours)))
        top1in5.append(int(np.argmax(ours) in r5 and np.argmax(ref) in o5))
        top5.append(len(r5 & o5) / 5)
        cos.append(float(np.dot(ref, ours) / (np.linalg.norm(ref) * np.linalg.norm(ours) + 1e-12)))
    return {"images": len(images), "top1Agreement": float(np.mean(top1)),
            "top1InOtherTop5": float(np.mean(top1in5)), "top5Overlap": float(np.mean(top5)),
            "meanCosine": float(np.mean(cos))}


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tflite", required=True)
    p.add_argument("--images", nargs="*", default=[], help="image files for the check (else smooth random images)")
    a = p.parse_args(argv)
    from PIL import Image

    if a.images:
        imgs = np.stack([np.asarray(Image.open(f).convert("RGB").resize((224, 224)), np.float32) / 127.5 - 1
                         for f in a.images])
    else:
        rng = np.random.default_rng(0)
        imgs = np.stack([np.asarray(Image.fromarray(rng.integers(0, 255, (8, 8, 3), np.uint8)).resize(
            (224, 224), Image.BICUBIC), np.float32) / 127.5 - 1 for _ in range(4)])
    print(json.dumps(compare_with_tflite(a.tflite, imgs)))


if __name__ == "__main__":
    main(sys.argv[1:])
