"""Adversarial objectives (`--gan_mode`) and the WGAN-GP gradient penalty.

Every mode expects raw discriminator outputs (no sigmoid in D) of any shape, e.g. a PatchGAN map; the
loss is the mean over all elements. A plugin adds a mode by registering a `GANCriterion` subclass in
`GAN_LOSSES`; `--gan_mode` reads its choices from there.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from util.registry import Registry


class GANCriterion:
    """One adversarial objective: `loss(prediction, target, target_is_real) -> scalar`.

    `target` is the real or fake label broadcast to the prediction's shape, or None for criteria with
    `uses_labels = False` (which only look at `target_is_real`).
    """

    uses_labels = True
    uses_gradient_penalty = False

    def loss(self, prediction: Tensor, target: Tensor | None, target_is_real: bool) -> Tensor:
        raise NotImplementedError


GAN_LOSSES = Registry("GAN loss", base=GANCriterion, option="gan_mode")


@GAN_LOSSES.register("lsgan")
class LSGANCriterion(GANCriterion):
    """Least squares (LSGAN): mean squared error between D's output and the 1/0 label."""

    def loss(self, prediction: Tensor, target: Tensor | None, target_is_real: bool) -> Tensor:
        return F.mse_loss(prediction, target)


@GAN_LOSSES.register("vanilla")
class VanillaCriterion(GANCriterion):
    """The original GAN cross-entropy: binary cross-entropy on D's logits against the 1/0 label."""

    def loss(self, prediction: Tensor, target: Tensor | None, target_is_real: bool) -> Tensor:
        return F.binary_cross_entropy_with_logits(prediction, target)


@GAN_LOSSES.register("wgangp")
class WGANGPCriterion(GANCriterion):
    """Wasserstein critic with gradient penalty: -mean(D) for real, +mean(D) for fake; D adds the penalty."""

    uses_labels = False
    uses_gradient_penalty = True

    def loss(self, prediction: Tensor, target: Tensor | None, target_is_real: bool) -> Tensor:
        return -prediction.mean() if target_is_real else prediction.mean()


@GAN_LOSSES.register("nonsaturating")
class NonSaturatingCriterion(GANCriterion):
    """Non-saturating logistic loss: softplus(-D) for real, softplus(D) for fake (CUT's name for it).

    Numerically the same as `vanilla` (BCE with logits against 1/0 is exactly these softplus terms); the
    name exists so CUT's `--gan_mode nonsaturating` command lines run unchanged.
    """

    uses_labels = False

    def loss(self, prediction: Tensor, target: Tensor | None, target_is_real: bool) -> Tensor:
        return F.softplus(-prediction).mean() if target_is_real else F.softplus(prediction).mean()


class GANLoss(nn.Module):
    """The adversarial loss selected by `--gan_mode`; `GANLoss(mode)(prediction, target_is_real) -> scalar`.

    The labels are (non-persistent) buffers, so `.to(device)` moves them and checkpoints do not carry them.
    Targets are the 0-d label expanded to the prediction's shape: a view, not a new tensor per call.
    """

    def __init__(self, gan_mode: str, target_real_label: float = 1.0, target_fake_label: float = 0.0) -> None:
        super().__init__()
        self.gan_mode = gan_mode
        self.criterion: GANCriterion = GAN_LOSSES.get(gan_mode)()
        self.register_buffer("real_label", torch.tensor(float(target_real_label)), persistent=False)
        self.register_buffer("fake_label", torch.tensor(float(target_fake_label)), persistent=False)

    @property
    def uses_gradient_penalty(self) -> bool:
        """True when D's loss must include `gradient_penalty` (wgangp)."""
        return self.criterion.uses_gradient_penalty

    def get_target_tensor(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        """The real or fake label broadcast to `prediction`'s shape (and device/dtype)."""
        label = self.real_label if target_is_real else self.fake_label
        # A no-op when the module was moved to the prediction's device; keeps AMP dtypes consistent.
        label = label.to(device=prediction.device, dtype=prediction.dtype)
        return label.expand_as(prediction)

    def forward(self, prediction: Tensor, target_is_real: bool) -> Tensor:
        target = self.get_target_tensor(prediction, target_is_real) if self.criterion.uses_labels else None
        return self.criterion.loss(prediction, target, target_is_real)

    def extra_repr(self) -> str:
        return f"gan_mode={self.gan_mode!r}"


GRADIENT_PENALTY_KINDS = ("mixed", "real", "fake")


def gradient_penalty(
    netD: nn.Module,
    real: Tensor,
    fake: Tensor,
    *,
    kind: str = "mixed",
    constant: float = 1.0,
    lambda_gp: float = 10.0,
    eps: float = 1e-16,
    scaler: torch.amp.GradScaler | None = None,
) -> Tensor:
    """WGAN-GP penalty `lambda_gp * mean((||dD(x)/dx||_2 - constant)^2)` (Gulrajani et al. 2017).

    `x` is `alpha * real + (1 - alpha) * fake` with one uniform alpha per sample (`kind="mixed"`), or the
    real or the fake batch itself, in float32 whatever precision G's output has under `--amp`. The graph is
    kept (`create_graph=True`) so the penalty backpropagates into D's parameters; the inputs are detached, so
    nothing flows into G. `eps` sits inside the square root so the penalty's own gradient stays finite where
    D's gradient is zero.

    With an fp16 gradient `scaler`, dD/dx is computed as PyTorch's mixed-precision recipe does: the
    backward pass is seeded with the scaler's factor (small gradients would underflow in fp16 otherwise) and
    the result divided by it in float32. Where that scaled pass overflows, the penalty's value is 0 and its
    gradient NaN, so the scaler skips the step and lowers its factor, as it does for any other overflow.
    """
    if kind not in GRADIENT_PENALTY_KINDS:
        raise ValueError(f"gradient_penalty kind must be one of {GRADIENT_PENALTY_KINDS}, got {kind!r}")
    if real.shape != fake.shape:
        raise ValueError(f"gradient_penalty needs real and fake of one shape, got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    dtype = torch.promote_types(torch.promote_types(real.dtype, fake.dtype), torch.float32)
    real, fake = real.detach().to(dtype), fake.detach().to(dtype)  # --amp: G's output is bf16/fp16
    if kind == "real":
        inputs = real
    elif kind == "fake":
        inputs = fake
    else:
        alpha_shape = (real.shape[0],) + (1,) * (real.dim() - 1)
        alpha = torch.rand(alpha_shape, device=real.device, dtype=dtype)
        inputs = torch.lerp(fake, real, alpha)  # alpha * real + (1 - alpha) * fake
    inputs = inputs.clone().requires_grad_(True)
    outputs = netD(inputs)
    outputs = list(outputs) if isinstance(outputs, Sequence) else [outputs]  # multi-scale Ds return a list
    scaled = scaler is not None and scaler.is_enabled()
    with torch.autocast(inputs.device.type, enabled=False):  # a backward pass: the forward's dtypes, as recorded
        if not scaled:
            (grads,) = torch.autograd.grad(outputs, inputs, [torch.ones_like(out) for out in outputs],
                                           create_graph=True)
        else:
            # Seed with scale / count (the scale itself, 2^16 and up, is beyond fp16's range as an output
            # gradient), then multiply by count / scale: the gradient of the plain sum of every output element,
            # computed where fp16 keeps its digits.
            count = sum(out.numel() for out in outputs)
            scale = scaler.scale(torch.ones((), device=inputs.device))  # a tensor: no host sync
            seeded = sum(out.float().sum() for out in outputs) * (scale / count)
            (grads,) = torch.autograd.grad(seeded, inputs, create_graph=True)
            grads = grads.float() * (count / scale)
    norms = torch.sqrt(grads.float().flatten(1).pow(2).sum(dim=1) + eps)
    penalty = ((norms - constant) ** 2).mean() * lambda_gp
    if scaled:
        penalty = _SkipStepIfNotFinite.apply(penalty)
    return penalty


class _SkipStepIfNotFinite(torch.autograd.Function):
    """The penalty where finite; else 0 forward and NaN backward, which makes a gradient scaler skip the step
    (an overflow of the scaled pass, not a divergence: the logged loss stays finite)."""

    @staticmethod
    def forward(ctx, penalty: Tensor) -> Tensor:
        finite = torch.isfinite(penalty)
        ctx.save_for_backward(finite)
        return torch.where(finite, penalty, torch.zeros_like(penalty))

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (finite,) = ctx.saved_tensors
        return torch.where(finite, grad, torch.full_like(grad, float("nan")))
