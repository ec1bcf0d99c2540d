"""train.py under test: runs its `main` (alone or as one torchrun process) and saves this process's final weights.

    python -m torch.distributed.run --nproc_per_node 2 tests/dist_worker.py OUT_DIR [train.py options]

Writes OUT_DIR/weights_rank<R>.pt (weights, last gradients, outputs on a fixed input). Each rank trains with
--checkpoints_dir OUT_DIR/files_rank<R>, so the test can see which processes wrote files, or, as a real job
does, all ranks in the one directory I2I_TEST_CHECKPOINTS names (to resume from what rank 0 saved).
I2I_TEST_FAIL_RANK=R makes rank R raise an I2IError at its second step.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from util.runtime import unwrap  # noqa: E402
from tests.helpers import load_script  # noqa: E402
from util.cli import run_main  # noqa: E402
from util.errors import I2IError  # noqa: E402


def fail_at_second_step(model) -> None:
    original, calls = model.optimize_parameters, []

    def optimize_parameters() -> None:
        calls.append(1)
        if len(calls) == 2:
            raise I2IError("injected failure for the test")
        original()

    model.optimize_parameters = optimize_parameters


def main() -> None:
    out = Path(sys.argv[1])
    rank = int(os.environ.get("RANK", "0"))
    train = load_script("train")
    created, initial = [], {}
    make_model = train.create_model

    def create_model(opt):
        model = make_model(opt)
        created.append(model)
        initial.update(probe_outputs(model))
        if os.environ.get("I2I_TEST_FAIL_RANK") == str(rank):
            fail_at_second_step(model)
        return model

    train.create_model = create_model
    checkpoints = os.environ.get("I2I_TEST_CHECKPOINTS") or str(out / f"files_rank{rank}")
    argv = sys.argv[2:] + ["--checkpoints_dir", checkpoints]
    run_main(train.main, argv)
    torch.save(final_state(created[0]) | {"initial_outputs": initial}, out / f"weights_rank{rank}.pt")


def final_state(model) -> dict[str, dict[str, torch.Tensor]]:
    """Per network: its weights, the gradients of the last step, and its output on a fixed input."""
    state: dict[str, dict[str, torch.Tensor]] = {"weights": {}, "grads": {}, "outputs": probe_outputs(model)}
    for name in model.model_names:
        net = unwrap(getattr(model, f"net{name}"))
        for key, value in net.state_dict().items():
            state["weights"][f"{name}.{key}"] = value.detach().cpu()
        for key, param in net.named_parameters():
            if param.grad is not None:
                state["grads"][f"{name}.{key}"] = param.grad.detach().cpu()
    return state


def probe_outputs(model) -> dict[str, torch.Tensor]:
    """Each network's output on a fixed random input of the run's crop size (in eval mode), on the CPU."""
    outputs = {}
    size = model.opt.crop_size
    for name in model.model_names:
        net = unwrap(getattr(model, f"net{name}"))
        channels = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d)).in_channels
        device = next(net.parameters()).device  # cuda:LOCAL_RANK in an NCCL job
        probe = torch.randn(1, channels, size, size, generator=torch.Generator().manual_seed(1)).to(device)
        training = net.training
        net.eval()  # no batch-norm statistics updated, no dropout drawn from the training RNG
        with torch.no_grad():
            outputs[name] = net(probe).cpu()
        net.train(training)
    return outputs

if __name__ == "__main__":
    main()
