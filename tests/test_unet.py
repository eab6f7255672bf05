import pytest
import torch

from helpers import perturb, tiny_model_config
from radiogen.config import ModelConfig
from radiogen.models import Denoiser, UNet, count_parameters


def test_output_shape_and_levels():
    net = UNet(tiny_model_config())
    x = torch.randn(2, 1, 80, 80)
    assert net(x, torch.zeros(2), torch.eye(4)[:2]).shape == x.shape
    # 2 + 1 + 2 + 1 + 2 encoder blocks, 3 + 1 + 3 + 1 + 3 decoder blocks (Section 4.1)
    assert len(net.down) == 8 and len(net.up) == 11
    assert sum(net.up_takes_skip) == 9


def test_paper_configuration_parameter_count():
    # The authors' released U-Net projects Q, K, V with 1×1 convolutions and has ≈31 M
    # parameters; the paper's text says 3×3, which adds 8/9 of the attention projection weights
    # at every one of the 11 attention layers (4 encoder, 1 bottleneck, 6 decoder).
    n1 = count_parameters(Denoiser(ModelConfig(attention_kernel=1)))
    n3 = count_parameters(Denoiser(ModelConfig(attention_kernel=3)))
    assert n1 == pytest.approx(31e6, rel=0.05)
    inner, c = 2 * 32, 256
    per_layer_extra = 8 * (c * 3 * inner + inner * c)
    assert n3 - n1 == 11 * per_layer_extra


def test_null_token_removes_the_context():
    net = perturb(UNet(tiny_model_config())).eval()
    x, c_noise = torch.randn(4, 1, 80, 80), torch.full((4,), 0.1)
    ctx_a, ctx_b = torch.eye(4), torch.eye(4)[[3, 2, 1, 0]]
    with torch.no_grad():
        cond_a = net(x, c_noise, ctx_a, torch.ones(4))
        cond_b = net(x, c_noise, ctx_b, torch.ones(4))
        null_a = net(x, c_noise, ctx_a, torch.zeros(4))
        null_b = net(x, c_noise, ctx_b, torch.zeros(4))
        no_ctx = net(x, c_noise, None)
    assert (cond_a - cond_b).abs().max() > 1e-4      # the context matters ...
    torch.testing.assert_close(null_a, null_b)          # ... unless it is the null token ∅
    torch.testing.assert_close(null_a, no_ctx)


def test_eval_is_deterministic_and_dropout_acts_in_training():
    net = perturb(UNet(tiny_model_config(dropout=0.5)))
    x, c_noise, ctx = torch.randn(2, 1, 80, 80), torch.zeros(2), torch.eye(4)[:2]
    net.eval()
    with torch.no_grad():
        assert torch.equal(net(x, c_noise, ctx), net(x, c_noise, ctx))
        net.train()
        assert not torch.equal(net(x, c_noise, ctx), net(x, c_noise, ctx))


def test_scalar_context_network():
    net = perturb(UNet(tiny_model_config(context_dim=1))).eval()
    x = torch.randn(2, 1, 80, 80)
    with torch.no_grad():
        lo = net(x, torch.zeros(2), torch.full((2, 1), -1.0))
        hi = net(x, torch.zeros(2), torch.full((2, 1), 2.0))
    assert (lo - hi).abs().max() > 1e-4


def test_config_rejects_bad_shapes():
    with pytest.raises(ValueError, match="norm groups"):
        ModelConfig(channels=20, norm_groups=32)
    with pytest.raises(ValueError, match="attention"):
        ModelConfig(attention=(False, True))


def test_patch_input_and_blocks_per_level():
    # 2×2 patches: the top level runs at 40×40 and the output is pixels again; one block at the
    # top level and two below (decoder: one more each).
    cfg = tiny_model_config(patch_size=2, channel_mult=(1, 2, 2, 2),
                            attention=(False, True, True, True), num_res_blocks=(1, 2, 2, 2))
    net = perturb(UNet(cfg)).eval()
    assert net.conv_in.in_channels == 4 and net.out[-1].out_channels == 4
    assert len(net.down) == 1 + 2 * 3 + 3 and len(net.up) == 2 + 3 * 3 + 3
    x = torch.randn(2, 1, 80, 80)
    with torch.no_grad():
        y = net(x, torch.zeros(2), torch.eye(4)[:2])
        assert y.shape == x.shape
        # every output pixel of a 2×2 patch depends on the input, not only the patch's first
        x2 = x.clone()
        x2[:, :, 41, 41] += 1.0
        assert (net(x2, torch.zeros(2), torch.eye(4)[:2]) - y)[:, :, 40:42, 40:42].abs().min() > 0
    assert cfg == ModelConfig(**{**cfg.__dict__, "num_res_blocks": [1, 2, 2, 2]})


def test_config_rejects_bad_patch_and_block_counts():
    with pytest.raises(ValueError, match="patch_size"):
        ModelConfig(patch_size=3)
    with pytest.raises(ValueError, match="halve"):
        ModelConfig(patch_size=2, channel_mult=(1, 2, 2, 2, 2), attention=(False,) * 5)
    with pytest.raises(ValueError, match="num_res_blocks"):
        ModelConfig(num_res_blocks=(1, 2))
