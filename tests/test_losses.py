"""GANLoss values against hand computations, and the WGAN-GP gradient penalty on analytic discriminators."""

import math
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.losses import GAN_LOSSES, GANLoss, gradient_penalty  # noqa: E402
from util.errors import I2IError  # noqa: E402

PRED_VALUES = [0.5, -1.0, 2.0, 0.0]


def patch_prediction() -> torch.Tensor:
    """A 1x1x2x2 'PatchGAN' output."""
    return torch.tensor(PRED_VALUES).view(1, 1, 2, 2)


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


# Expected values written out from the definitions, element by element.
HAND = {
    ("lsgan", True): sum((p - 1.0) ** 2 for p in PRED_VALUES) / 4,  # (0.25 + 4 + 1 + 1) / 4
    ("lsgan", False): sum(p**2 for p in PRED_VALUES) / 4,  # (0.25 + 1 + 4 + 0) / 4
    ("vanilla", True): sum(softplus(-p) for p in PRED_VALUES) / 4,  # -log(sigmoid(p))
    ("vanilla", False): sum(softplus(p) for p in PRED_VALUES) / 4,  # -log(1 - sigmoid(p))
    ("wgangp", True): -sum(PRED_VALUES) / 4,
    ("wgangp", False): sum(PRED_VALUES) / 4,
}


def test_registry_lists_the_builtin_modes():
    assert {"lsgan", "vanilla", "wgangp"} <= set(GAN_LOSSES.names())


@pytest.mark.parametrize("mode,is_real", sorted(HAND))
def test_loss_value_matches_hand_computation(mode, is_real):
    loss = GANLoss(mode)(patch_prediction(), is_real)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(HAND[(mode, is_real)], rel=1e-6)


def test_lsgan_literal_values():
    criterion = GANLoss("lsgan")
    assert criterion(patch_prediction(), True).item() == pytest.approx(1.5625)
    assert criterion(patch_prediction(), False).item() == pytest.approx(1.3125)


def test_custom_labels_are_used():
    criterion = GANLoss("lsgan", target_real_label=0.9, target_fake_label=0.1)
    expected_real = sum((p - 0.9) ** 2 for p in PRED_VALUES) / 4
    expected_fake = sum((p - 0.1) ** 2 for p in PRED_VALUES) / 4
    assert criterion(patch_prediction(), True).item() == pytest.approx(expected_real, rel=1e-6)
    assert criterion(patch_prediction(), False).item() == pytest.approx(expected_fake, rel=1e-6)


def test_wgangp_ignores_labels():
    plain = GANLoss("wgangp")(patch_prediction(), True)
    smoothed = GANLoss("wgangp", target_real_label=0.9)(patch_prediction(), True)
    assert plain.item() == smoothed.item() == pytest.approx(-0.375)


def test_target_is_broadcast_view_of_the_label_buffer():
    criterion = GANLoss("vanilla")
    pred = torch.zeros(2, 1, 5, 5)
    target = criterion.get_target_tensor(pred, True)
    assert target.shape == pred.shape
    assert torch.all(target == 1.0)
    assert target.data_ptr() == criterion.real_label.data_ptr()  # expanded, not allocated per call
    assert torch.all(criterion.get_target_tensor(pred, False) == 0.0)


def test_labels_are_buffers_that_follow_to_but_are_not_checkpointed():
    criterion = GANLoss("lsgan")
    assert {name for name, _ in criterion.named_buffers()} == {"real_label", "fake_label"}
    assert criterion.state_dict() == {}
    criterion = criterion.to(torch.float64)
    assert criterion.real_label.dtype == torch.float64
    if torch.cuda.is_available():
        criterion = GANLoss("lsgan").to("cuda")
        assert criterion.real_label.is_cuda
        assert criterion(patch_prediction().cuda(), True).item() == pytest.approx(1.5625)


def test_loss_backpropagates_to_prediction():
    pred = patch_prediction().requires_grad_(True)
    GANLoss("lsgan")(pred, True).backward()
    # d/dp mean((p - 1)^2) = 2 (p - 1) / 4
    expected = torch.tensor([2 * (p - 1.0) / 4 for p in PRED_VALUES]).view(1, 1, 2, 2)
    assert torch.allclose(pred.grad, expected)


def test_uses_gradient_penalty_only_for_wgangp():
    assert GANLoss("wgangp").uses_gradient_penalty
    assert not GANLoss("lsgan").uses_gradient_penalty
    assert not GANLoss("vanilla").uses_gradient_penalty


def test_unknown_mode_names_the_option_and_the_choices():
    with pytest.raises(I2IError) as info:
        GANLoss("lsgann")
    message = str(info.value)
    assert "--gan_mode" in message and "lsgan" in message and "wgangp" in message


class LinearD(nn.Module):
    """D(x) = w . x + b per sample, so dD/dx = w for every input and ||grad|| = ||w||."""

    def __init__(self, weights):
        super().__init__()
        self.linear = nn.Linear(len(weights), 1)
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([weights]))
            self.linear.bias.fill_(0.3)

    def forward(self, x):
        return self.linear(x.flatten(1))


class HalfSquareD(nn.Module):
    """D(x) = 0.5 * ||x||^2 per sample, so dD/dx = x and the gradient norm is ||x||."""

    def forward(self, x):
        return 0.5 * x.flatten(1).pow(2).sum(dim=1)


def batch(values):
    return torch.tensor(values).view(len(values), 2, 1, 1)


@pytest.mark.parametrize("kind", ["mixed", "real", "fake"])
def test_gradient_penalty_of_linear_d(kind):
    netD = LinearD([3.0, 4.0])  # ||w|| = 5
    real, fake = batch([[1.0, 2.0], [0.0, -1.0]]), batch([[5.0, 5.0], [-2.0, 1.0]])
    penalty = gradient_penalty(netD, real, fake, kind=kind)
    assert penalty.item() == pytest.approx(10.0 * (5.0 - 1.0) ** 2, rel=1e-6)  # 160
    penalty = gradient_penalty(netD, real, fake, kind=kind, constant=2.0, lambda_gp=0.5)
    assert penalty.item() == pytest.approx(0.5 * (5.0 - 2.0) ** 2, rel=1e-6)


def test_gradient_penalty_is_differentiable_wrt_d_parameters():
    netD = LinearD([3.0, 4.0])
    real, fake = batch([[1.0, 2.0]]), batch([[0.0, 0.0]])
    fake.requires_grad_(True)  # like G's output: the penalty must not reach it
    gradient_penalty(netD, real, fake).backward()
    # d/dw 10 (||w|| - 1)^2 = 20 (||w|| - 1) w / ||w|| = 16 w
    assert torch.allclose(netD.linear.weight.grad, torch.tensor([[48.0, 64.0]]))
    assert netD.linear.bias.grad is None or torch.all(netD.linear.bias.grad == 0)
    assert fake.grad is None


def test_gradient_penalty_interpolates_per_sample():
    real = batch([[3.0, 4.0], [0.0, 2.0], [1.0, 1.0]])
    fake = batch([[0.0, 0.0], [2.0, 0.0], [-1.0, 3.0]])
    torch.manual_seed(7)
    alpha = torch.rand(3, 1, 1, 1)  # the draw gradient_penalty makes after the same seed
    torch.manual_seed(7)
    penalty = gradient_penalty(HalfSquareD(), real, fake, kind="mixed")
    x = alpha * real + (1 - alpha) * fake
    norms = x.flatten(1).norm(dim=1)
    assert penalty.item() == pytest.approx((10.0 * (norms - 1.0) ** 2).mean().item(), rel=1e-5)
    assert len(set(alpha.flatten().tolist())) == 3  # one alpha per sample, not one for the batch


def test_gradient_penalty_real_and_fake_kinds_use_those_batches():
    real, fake = batch([[3.0, 4.0], [0.0, 2.0]]), batch([[0.0, 0.0], [6.0, 8.0]])
    assert gradient_penalty(HalfSquareD(), real, fake, kind="real").item() == pytest.approx(
        10.0 * ((5.0 - 1.0) ** 2 + (2.0 - 1.0) ** 2) / 2, rel=1e-5
    )
    assert gradient_penalty(HalfSquareD(), real, fake, kind="fake").item() == pytest.approx(
        10.0 * ((0.0 - 1.0) ** 2 + (10.0 - 1.0) ** 2) / 2, rel=1e-5
    )


def test_gradient_penalty_is_finite_where_d_is_flat():
    netD = LinearD([0.0, 0.0])  # zero input gradient
    penalty = gradient_penalty(netD, batch([[1.0, 2.0]]), batch([[0.0, 1.0]]))
    assert penalty.item() == pytest.approx(10.0, rel=1e-5)
    penalty.backward()
    assert torch.isfinite(netD.linear.weight.grad).all()


def test_gradient_penalty_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        gradient_penalty(LinearD([1.0, 1.0]), batch([[1.0, 1.0]]), batch([[1.0, 1.0]]), kind="both")
    with pytest.raises(ValueError, match="shape"):
        gradient_penalty(LinearD([1.0, 1.0]), batch([[1.0, 1.0]]), batch([[1.0, 1.0], [0.0, 0.0]]))


def test_gradient_penalty_mixes_a_half_precision_fake_with_a_float32_real():
    """Under --amp G's output is bf16/fp16 while the real batch stays float32: the interpolation is float32."""
    netD = LinearD([3.0, 4.0])
    real, fake = batch([[1.0, 2.0], [0.0, -1.0]]), batch([[5.0, 5.0], [-2.0, 1.0]]).to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        penalty = gradient_penalty(netD, real, fake)
    assert penalty.dtype == torch.float32
    assert penalty.item() == pytest.approx(160.0, rel=0.02)  # ||w|| = 5 in bf16 arithmetic


def test_gradient_penalty_with_a_scaler_unscales_what_it_scaled():
    netD = LinearD([3.0, 4.0])
    real, fake = batch([[1.0, 2.0], [0.0, -1.0]]), batch([[5.0, 5.0], [-2.0, 1.0]])
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**16)
    penalty = gradient_penalty(netD, real, fake, scaler=scaler)
    assert penalty.item() == pytest.approx(160.0, rel=1e-6)
    penalty.backward()
    assert torch.allclose(netD.linear.weight.grad, torch.tensor([[48.0, 64.0]]))


def tiny_gradient_d() -> nn.Module:
    """D(x) = 1e-4 * 1e-4 * x: dD/dx = 1e-8, below fp16's smallest number (6e-8)."""
    netD = nn.Sequential(nn.Conv2d(1, 1, 1, bias=False), nn.Conv2d(1, 1, 1, bias=False))
    with torch.no_grad():
        for conv in netD:
            conv.weight.fill_(1e-4)
    return netD


def test_gradient_penalty_under_fp16_is_scaled_so_small_gradients_survive():
    """PyTorch's recipe for gradient penalties under fp16: the backward pass runs scaled, the result is unscaled."""
    real, fake = torch.ones(2, 1, 1, 1), torch.zeros(2, 1, 1, 1)
    results = {}
    for name, scaler in (("plain", None), ("scaled", torch.amp.GradScaler("cpu"))):
        with torch.autocast("cpu", dtype=torch.float16):
            results[name] = gradient_penalty(tiny_gradient_d(), real, fake, constant=0.0, eps=0.0, scaler=scaler)
    assert results["plain"].item() == 0.0  # ||dD/dx|| = 1e-8 underflowed to 0 in fp16
    assert results["scaled"].item() == pytest.approx(10.0 * 1e-16, rel=0.01)


def test_gradient_penalty_overflowing_its_scaled_pass_makes_the_scaler_skip_the_step():
    """An overflow is the scaler's business (it skips the step and lowers its factor), not a divergence: the
    penalty's value stays finite (0) and its gradient is NaN, which GradScaler.step treats as an overflow."""
    netD = tiny_gradient_d()
    optimizer = torch.optim.SGD(netD.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**40)
    with torch.autocast("cpu", dtype=torch.float16):
        penalty = gradient_penalty(netD, torch.ones(2, 1, 1, 1), torch.zeros(2, 1, 1, 1), scaler=scaler)
    assert penalty.item() == 0.0
    scaler.scale(penalty).backward()
    before = [p.detach().clone() for p in netD.parameters()]
    scaler.step(optimizer)
    scaler.update()
    assert all(torch.equal(a, b) for a, b in zip(before, netD.parameters()))  # skipped
    assert scaler.get_scale() < 2.0**40
