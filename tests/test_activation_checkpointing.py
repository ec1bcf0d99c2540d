"""--checkpoint_activations: the same training step (losses, gradients, updated weights, batch norm statistics)
as without it, the same checkpoint keys, combined with --channels_last/--amp and with a resume; and it is
really applied (torch.utils.checkpoint.checkpoint is called) when on, and only then, and only while training."""

from __future__ import annotations

import pytest
import torch
import torch.utils.checkpoint

from engine.training_state import TrainingState, resume_or_start
from models import create_model
from networks import build_generator
from networks.activation_checkpointing import set_activation_checkpointing
from networks.resnet import ResnetBlock
from options.train_options import TrainOptions
from tests.helpers import aligned_dataset, tiny_args, unaligned_dataset
from util.runtime import unwrap

# The smallest registered U-Net is unet_128 (sides multiple of 128); CycleGAN at 32 px.
SIZES = {"cycle_gan": ["--load_size", "32", "--crop_size", "32"],
         "pix2pix": ["--netG", "unet_128", "--load_size", "128", "--crop_size", "128"]}
SIDE = {"cycle_gan": 32, "pix2pix": 128}


@pytest.fixture
def checkpoint_calls(monkeypatch) -> list[int]:
    """Counts the calls of torch.utils.checkpoint.checkpoint (still running it)."""
    calls = [0]
    real = torch.utils.checkpoint.checkpoint

    def counting(*args, **kwargs):
        calls[0] += 1
        assert kwargs.get("use_reentrant") is False
        return real(*args, **kwargs)

    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint", counting)
    return calls


def options(tmp_path, model_name: str, flags: list[str], name: str = "run"):
    root = unaligned_dataset(tmp_path / "data", size=32)
    aligned_dataset(root, size=128)
    args = tiny_args(root, tmp_path) + ["--name", name, "--model", model_name, "--seed", "0", "--ngf", "4",
                                        "--ndf", "4", "--optimizer_impl", "for_loop", *SIZES[model_name], *flags]
    return TrainOptions().parse(args)


def build(tmp_path, model_name: str, flags: list[str], name: str = "run"):
    opt = options(tmp_path, model_name, flags, name)
    torch.manual_seed(0)
    model = create_model(opt)
    model.setup(opt)
    return model, opt


def batch(model_name: str, seed: int = 1) -> dict:
    generator = torch.Generator().manual_seed(seed)
    side = SIDE[model_name]
    images = [torch.rand(1, 3, side, side, generator=generator).to(torch.get_default_dtype()) * 2 - 1
              for _ in range(2)]
    return {"A": images[0], "B": images[1], "A_paths": ["a.png"], "B_paths": ["b.png"]}


def step(model, model_name: str, seed: int = 1) -> dict[str, float]:
    torch.manual_seed(seed)  # the image pool's and dropout's draws
    model.set_input(batch(model_name, seed))
    model.optimize_parameters()
    return model.get_current_losses()


def nets(model) -> dict[str, torch.nn.Module]:
    return {name: unwrap(net) for name, net in zip(model.model_names, model.networks())}


def assert_same_training(plain, checkpointed, atol: float = 1e-6) -> None:
    for name, net in nets(plain).items():
        other = nets(checkpointed)[name]
        for (key, p), q in zip(net.named_parameters(), other.parameters()):
            assert torch.allclose(p, q, rtol=0, atol=atol), f"net {name}: weight {key} differs"
            if p.grad is not None or q.grad is not None:
                assert torch.allclose(p.grad, q.grad, rtol=0, atol=atol), f"net {name}: gradient of {key} differs"
        for (key, b), c in zip(net.named_buffers(), other.buffers()):
            assert torch.allclose(b.double(), c.double(), rtol=0, atol=atol), f"net {name}: buffer {key} differs"


@pytest.mark.parametrize("model_name", ["cycle_gan", "pix2pix"])
def test_same_step_with_and_without_checkpointing(tmp_path, float64, checkpoint_calls, model_name):
    """float64, fixed seed: one optimize_parameters step gives the same losses, gradients, weights and (pix2pix's
    batch norm) running statistics to 1e-6; checkpoint is called only with the flag."""
    plain, _ = build(tmp_path, model_name, [], "plain")
    plain_losses = step(plain, model_name)
    assert checkpoint_calls[0] == 0
    checkpointed, _ = build(tmp_path, model_name, ["--checkpoint_activations"], "ckpt")
    generators = [net for name, net in nets(checkpointed).items() if name.startswith("G")]
    forwards = [0]
    for g in generators:
        g.register_forward_hook(lambda *_: forwards.__setitem__(0, forwards[0] + 1))
    losses = step(checkpointed, model_name)
    blocks = sum(set_activation_checkpointing(g) for g in generators)
    assert checkpoint_calls[0] >= blocks > 0, "the generators' blocks were not checkpointed"
    if model_name == "cycle_gan":  # per resnet_9blocks call: the stem, 3 groups of 3 residual blocks, the head
        assert forwards[0] >= 4  # G_A(A), G_B(G_A(A)), G_B(B), G_A(G_B(B)) (and the identity calls if on)
        assert checkpoint_calls[0] == forwards[0] * (3 + 2), "the stem and head were not checkpointed"
    assert next(plain.networks()[0].parameters()).dtype == torch.float64
    assert losses.keys() == plain_losses.keys()
    for key, value in plain_losses.items():
        assert abs(losses[key] - value) <= 1e-6, f"loss {key}: {losses[key]} vs {value}"
    assert_same_training(plain, checkpointed)
    if model_name == "pix2pix":  # batch norm: the replay must not update the running statistics a second time
        assert any("running_mean" in key for key in nets(checkpointed)["G"].state_dict())


@pytest.mark.parametrize("model_name", ["cycle_gan", "pix2pix"])
def test_state_dict_keys_are_those_without_the_flag(tmp_path, checkpoint_calls, model_name):
    plain, _ = build(tmp_path, model_name, [], "plain")
    checkpointed, _ = build(tmp_path, model_name, ["--checkpoint_activations"], "ckpt")
    step(checkpointed, model_name)
    assert checkpoint_calls[0] > 0
    for name, net in nets(plain).items():
        assert list(net.state_dict()) == list(nets(checkpointed)[name].state_dict()), name
    reference_g = build_generator(plain.opt.netG, 3, 3, 4, norm=plain.opt.norm, use_dropout=not plain.opt.no_dropout)
    assert list(reference_g.state_dict()) == list(nets(checkpointed)["G" if model_name == "pix2pix" else "G_A"]
                                                  .state_dict())


def test_inference_and_eval_run_plain(tmp_path, checkpoint_calls):
    model, _ = build(tmp_path, "cycle_gan", ["--checkpoint_activations"])
    model.set_input(batch("cycle_gan"))
    model.test()  # no_grad
    assert checkpoint_calls[0] == 0
    g = nets(model)["G_A"]
    g.eval()
    g(torch.rand(1, 3, 32, 32)).sum().backward()  # autograd on, but eval mode
    assert checkpoint_calls[0] == 0
    g.train()
    g(torch.rand(1, 3, 32, 32)).sum().backward()
    assert checkpoint_calls[0] == 3 + 2  # resnet_9blocks: the stem, one per 3 residual blocks, the head


@pytest.mark.parametrize("netG,n_blocks", [("resnet_9blocks", 9), ("resnet_6blocks", 6),
                                           ("antialias_resnet_9blocks", 9), ("antialias_resnet_6blocks", 6)])
@pytest.mark.parametrize("norm", ["instance", "batch"])
def test_resnet_generators_segments(float64, checkpoint_calls, netG, n_blocks, norm):
    """float64: the ResNet generators (the reference's and CUT's anti-aliased one) checkpointed as stem, blocks and
    head give the same output, input and weight gradients and batch norm statistics to 1e-6 (dropout on, so the
    replay's RNG matters too); a checkpoint call per 3 blocks, and the stem and the head, per forward; each block
    run twice (the pass and one replay: no nested checkpoint inside a group); the same state_dict keys."""
    torch.manual_seed(0)
    plain = build_generator(netG, 3, 3, 4, norm=norm, use_dropout=True)
    checkpointed = build_generator(netG, 3, 3, 4, norm=norm, use_dropout=True)
    checkpointed.load_state_dict(plain.state_dict())
    keys = list(checkpointed.state_dict())
    assert set_activation_checkpointing(checkpointed) == n_blocks + 1  # the blocks and the generator itself
    assert list(checkpointed.state_dict()) == keys
    block_runs = [0]
    for block in checkpointed.modules():
        if isinstance(block, ResnetBlock):
            block.conv_block.register_forward_pre_hook(lambda *_: block_runs.__setitem__(0, block_runs[0] + 1))
    outputs, grads = [], []
    for net in (plain, checkpointed):
        net.train()
        x = (torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1).requires_grad_()
        torch.manual_seed(5)  # the same dropout masks
        y = net(x)
        (y * torch.linspace(-1, 1, y.numel()).view_as(y)).sum().backward()
        outputs.append(y.detach())
        grads.append(x.grad)
    assert checkpoint_calls[0] == -(-n_blocks // 3) + 2
    assert block_runs[0] == 2 * n_blocks
    assert torch.allclose(outputs[0], outputs[1], rtol=0, atol=1e-6)
    assert torch.allclose(grads[0], grads[1], rtol=0, atol=1e-6)
    for (key, p), q in zip(plain.named_parameters(), checkpointed.parameters()):
        assert torch.allclose(p.grad, q.grad, rtol=0, atol=1e-6), f"gradient of {key} differs"
    for (key, b), c in zip(plain.named_buffers(), checkpointed.buffers()):
        assert torch.allclose(b.double(), c.double(), rtol=0, atol=1e-6), f"buffer {key} differs"


@pytest.mark.parametrize("flags", [["--channels_last"], ["--amp"], ["--amp", "--channels_last"]])
def test_composes_with_channels_last_and_amp(tmp_path, checkpoint_calls, flags):
    """--amp on the CPU is bf16 autocast; the replay runs under the same autocast, so the step matches."""
    plain, _ = build(tmp_path, "cycle_gan", flags, "plain")
    plain_losses = step(plain, "cycle_gan")
    assert checkpoint_calls[0] == 0
    checkpointed, _ = build(tmp_path, "cycle_gan", [*flags, "--checkpoint_activations"], "ckpt")
    losses = step(checkpointed, "cycle_gan")
    assert checkpoint_calls[0] > 0
    if "--amp" in flags:
        assert checkpointed.amp_dtype == torch.bfloat16
    if "--channels_last" in flags:
        assert nets(checkpointed)["G_A"].model[1].weight.is_contiguous(memory_format=torch.channels_last)
    for key, value in plain_losses.items():
        assert torch.isfinite(torch.tensor(losses[key])) and abs(losses[key] - value) <= 1e-5, key
    assert_same_training(plain, checkpointed, atol=1e-5)


def test_resume_with_the_flag_continues_exactly_and_loads_without_it(tmp_path, checkpoint_calls):
    """A training state saved by a checkpointed run resumes (--continue_train) to the same next step, with the flag
    and without it: the files are the same either way."""
    first, opt = build(tmp_path, "cycle_gan", ["--checkpoint_activations", "--pool_size", "2"])
    step(first, "cycle_gan", seed=1)
    TrainingState(opt, first, _dataset(opt)).save_latest(epoch=1, epoch_iter=1, total_iters=1)
    step(first, "cycle_gan", seed=2)
    calls = checkpoint_calls[0]
    assert calls > 0

    for flags in (["--checkpoint_activations"], []):
        resumed, resumed_opt = build(tmp_path, "cycle_gan", [*flags, "--pool_size", "2", "--continue_train"])
        state = resume_or_start(resumed_opt, resumed, _dataset(resumed_opt))
        assert state.resumed_from is not None and state.total_iters == 1
        before = checkpoint_calls[0]
        step(resumed, "cycle_gan", seed=2)
        assert (checkpoint_calls[0] > before) == bool(flags)
        assert_same_training(first, resumed, atol=1e-6)


def _dataset(opt):
    from data import create_dataset

    return create_dataset(opt)


def test_a_generator_without_checkpointed_blocks_says_so(tmp_path):
    """--checkpoint_activations with a generator that cannot recompute (unet_upsample) trains as without the flag
    and says so once per generator; a ResNet says nothing."""
    with pytest.warns(UserWarning, match="--netG unet_upsample has no blocks that recompute"):
        build(tmp_path, "cycle_gan", ["--checkpoint_activations", "--netG", "unet_upsample"], "upsample")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        build(tmp_path, "cycle_gan", ["--checkpoint_activations"], "resnet")
