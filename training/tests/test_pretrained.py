"""The TFLite -> PyTorch conversion of the pretrained MobileNetV2 (needs ../shared/pretrained)."""
from pathlib import Path

import numpy as np
import pytest
import torch

from thyroid_seg.model import ModelConfig, build_model
from thyroid_seg.pretrained import compare_with_tflite, load_encoder, read_tflite_convs

PRETRAINED = Path(__file__).resolve().parents[3] / "shared" / "pretrained" / "coral-mobilenet-v2"
IMAGENET = PRETRAINED / "tf2_mobilenet_v2_1.0_224_ptq.tflite"
needs_weights = pytest.mark.skipif(not IMAGENET.exists(), reason=f"{IMAGENET} absent (../shared not beside the repo)")


def smooth_images(n: int, seed: int = 0) -> np.ndarray:
    """Smooth random RGB images in [-1, 1] (stable classes, unlike white noise)."""
    rng = np.random.default_rng(seed)
    small = torch.from_numpy(rng.uniform(-1, 1, (n, 3, 8, 8)).astype(np.float32))
    return torch.nn.functional.interpolate(small, size=224, mode="bicubic").clamp(-1, 1).permute(0, 2, 3, 1).numpy()


@needs_weights
def test_converted_classifier_agrees_with_the_tflite_interpreter():
    # float weights vs the interpreter's integer arithmetic: close calls may swap the top two classes
    r = compare_with_tflite(IMAGENET, smooth_images(6))
    assert r["top1InOtherTop5"] == 1.0, r
    assert r["top1Agreement"] >= 0.5, r
    assert r["top5Overlap"] >= 0.8, r
    assert r["meanCosine"] >= 0.9, r


@needs_weights
@pytest.mark.parametrize("name", ["tf2_mobilenet_v2_1.0_224_ptq.tflite", "deeplabv3_mnv2_pascal_quant.tflite"])
def test_grey_encoder_takes_the_summed_rgb_stem(name):
    model = build_model(ModelConfig())
    info = load_encoder(model.encoder, PRETRAINED / name)
    assert info["convsLoaded"] == 51
    stem = read_tflite_convs(PRETRAINED / name)[0]
    assert torch.allclose(model.encoder.stem[0].weight, torch.from_numpy(stem.weight).sum(1, keepdim=True))
    # batch norm starts as identity plus the folded bias
    bn = model.encoder.stem[1]
    assert torch.allclose(bn.bias, torch.from_numpy(stem.bias))
    model.eval()
    with torch.no_grad():
        y = model(torch.zeros(1, 1, 64, 64))
    assert torch.isfinite(y).all()
