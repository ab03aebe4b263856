import pytest
import torch

from thyroid_seg.model import (ModelConfig, adaptive_avg_pool_exportable, build_model, count_macs, count_params)
import torch.nn.functional as F


@pytest.mark.parametrize("arch", ["improved", "deeplabv3plus"])
@pytest.mark.parametrize("size", [256, 512])
def test_output_shape(arch, size):
    m = build_model(ModelConfig(arch=arch)).eval()
    with torch.no_grad():
        y = m(torch.zeros(2, 1, size, size))
    assert y.shape == (2, 1, size, size)


def test_parameter_counts_and_macs_in_range():
    improved = build_model(ModelConfig())
    base = build_model(ModelConfig(arch="deeplabv3plus"))
    assert 1.5e6 < count_params(improved) < 3.0e6
    assert 5.5e6 < count_params(base) < 6.1e6  # the standard DeepLabV3+ MobileNetV2 (5.8 M)
    assert count_macs(improved, 512) < 6e9      # target: <= 6 GMACs per 512x512 frame
    assert 25e9 < count_macs(base, 512) < 27.5e9


def _signature(m: torch.nn.Module) -> tuple:
    return tuple((n, tuple(p.shape)) for n, p in m.named_parameters())


@pytest.mark.parametrize("switch", [{"aspp": "plain"}, {"ppm": False}, {"attention": False}, {"skips": False},
                                    {"arch": "deeplabv3plus"}])
def test_each_switch_changes_the_graph(switch):
    ref = _signature(build_model(ModelConfig()))
    assert _signature(build_model(ModelConfig(**switch))) != ref


def test_plain_aspp_has_full_3x3_convs_and_dsconv_has_depthwise():
    ds = build_model(ModelConfig())
    plain = build_model(ModelConfig(aspp="plain"))
    dw = [m for m in ds.aspp.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]
    assert len(dw) == 3 and all(m.dilation[0] in (6, 12, 18) for m in dw)
    assert not [m for m in plain.aspp.modules() if isinstance(m, torch.nn.Conv2d) and m.groups > 1]


@pytest.mark.parametrize("shape", [(16, 16), (32, 20), (7, 9)])
def test_exportable_adaptive_pool_matches_torch(shape):
    x = torch.randn(2, 3, *shape)
    for b in (1, 2, 3, 6):
        assert torch.allclose(adaptive_avg_pool_exportable(x, b), F.adaptive_avg_pool2d(x, b), atol=1e-6)


def test_encoder_output_stride_16():
    m = build_model(ModelConfig())
    feats = m.encoder(torch.zeros(1, 1, 256, 256))
    assert {k: v.shape[-1] for k, v in feats.items()} == {2: 128, 4: 64, 8: 32, 16: 16}
