"""What a model saves and restores: its network files, its full training state, and how its networks are wrapped.

`BaseModel` takes these from `CheckpointMixin`; the engine and inference use only these methods, never a
model's attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from networks.compat import load_state_dict_compat
from util.checkpoint import load_state_dict, move_to, network_file, save_state_dict
from util.collectives import is_main
from util.errors import I2IError
from util.option_types import replaced
from util.runtime import unwrap

from .image_pool import ImagePool
from .schedulers import build_scheduler
from .weight_average import WeightAverage


class CheckpointMixin:
    """Saving, loading and wrapping for a model with `model_names`, `optimizers`, `schedulers` and `opt`."""

    def networks(self) -> list[nn.Module]:
        return [getattr(self, f"net{name}") for name in self.model_names]

    def checkpoint_path(self, epoch: str | int, name: str) -> Path:
        """`<epoch>_net_<name>.pth`, or `.safetensors` with --checkpoint_format safetensors (loading finds either)."""
        return network_file(self.save_dir, epoch, name, ".safetensors" if self.opt.checkpoint_format ==
                            "safetensors" else ".pth")

    def save_networks(self, epoch: str | int) -> None:
        """Write `<epoch>_net_<name>.pth`: plain state_dicts, as the reference, each written atomically.
        Under torchrun only rank 0 writes (all ranks hold the same weights)."""
        if not is_main():
            return
        averages = self.weight_average.averages if self.weight_average is not None else {}
        for name in self.model_names:
            weights = averages.get(name) or unwrap(getattr(self, f"net{name}")).state_dict()
            save_state_dict(weights, self.checkpoint_path(epoch, name))

    def load_networks(self, epoch: str | int) -> None:
        for name in self.model_names:
            path = self.checkpoint_path(epoch, name)
            state = load_state_dict(path, map_location=self.device)
            load_state_dict_compat(unwrap(getattr(self, f"net{name}")), state, net_name=name, source=str(path))

    def wrap_networks(self, wrap: Callable[[str, nn.Module], nn.Module]) -> None:
        """Replace each network by `wrap(name, net)`, in every attribute that holds it (aliases included)."""
        for name in self.model_names:
            old = getattr(self, f"net{name}")
            new = wrap(name, old)
            for attribute, value in list(vars(self).items()):
                if value is old:
                    setattr(self, attribute, new)

    # -- the training state ---------------------------------------------------------------------------

    def training_state(self, *, shared: bool = True) -> dict[str, Any]:
        """Everything training needs to continue exactly, as tensors (on the CPU) and plain containers.
        `shared=False` gives only the parts that differ between torchrun processes (the image pools)."""
        state: dict[str, Any] = {"pools": {name: move_to(pool.state_dict(), "cpu")
                                           for name, pool in self._parts(ImagePool)}}
        if shared:
            state |= {
                "nets": {name: {k: v.detach().cpu().clone() for k, v in unwrap(net).state_dict().items()}
                         for name, net in zip(self.model_names, self.networks())},
                "optimizers": [o.state_dict() for o in self.optimizers],
                "schedulers": [s.state_dict() for s in getattr(self, "schedulers", [])],
                "scalers": {name: s.state_dict() for name, s in self._parts(torch.amp.GradScaler)},
                "metric": float(self.metric),
            }
            if self.weight_average is not None:
                state["weight_average"] = self.weight_average.state_dict()
        return state

    def load_training_state(self, state: dict[str, Any], source: str | Path) -> None:
        """Restore what `training_state()` returned (the model set up for training, optimizers included)."""
        for name, net in zip(self.model_names, self.networks()):
            if name not in state["nets"]:
                raise I2IError(f"{source} holds no weights for net {name} (it has {', '.join(state['nets'])}): it "
                               "was saved by another --model. Use another --name, or start without --continue_train.")
            try:
                unwrap(net).load_state_dict(state["nets"][name])
            except RuntimeError as exc:
                raise I2IError(f"{source}: net {name} was saved with other architecture options; use the options in "
                               f"{Path(self.save_dir) / 'train_opt.txt'}. ({str(exc).splitlines()[0]})") from None
        _load_all(source, "optimizers", self.optimizers, state["optimizers"])
        _load_all(source, "schedulers", getattr(self, "schedulers", []), state["schedulers"])
        for name, pool in self._parts(ImagePool):
            if name in state["pools"]:
                pool.load_state_dict(move_to(state["pools"][name], self.device))
        for name, scaler in self._parts(torch.amp.GradScaler):
            if name in state["scalers"]:
                scaler.load_state_dict(state["scalers"][name])
        self.metric = state.get("metric", 0.0)
        if self.weight_average is not None and "weight_average" in state:
            self.weight_average.load_state_dict(state["weight_average"])

    def restart_schedules(self, epoch: int) -> None:
        """Rebuild the LR schedulers from the current options as if training started at `epoch` (a resumed run
        whose schedule options changed)."""
        opt = replaced(self.opt, epoch_count=epoch)
        for optimizer in self.optimizers:
            for group in optimizer.param_groups:
                group["initial_lr"] = group["lr"] = opt.lr
        self.schedulers = [build_scheduler(o, opt) for o in self.optimizers]

    def start_weight_average(self) -> None:
        """--ema_decay: average the generators' weights (every network named G...) after each of their steps."""
        if not self.isTrain or self.opt.ema_decay <= 0:
            return
        nets = {name: getattr(self, f"net{name}") for name in self.model_names if name.startswith("G")}
        self.weight_average = WeightAverage(nets, self.opt.ema_decay)
        averaged = {id(p) for net in nets.values() for p in net.parameters()}
        for optimizer in self.optimizers:
            if any(id(p) in averaged for group in optimizer.param_groups for p in group["params"]):
                optimizer.register_step_post_hook(lambda *_: self.weight_average.update(nets))

    def _parts(self, kind: type) -> list[tuple[str, Any]]:
        """This model's attributes of a kind (image pools, gradient scalers), sorted by name."""
        return sorted((name, value) for name, value in vars(self).items() if isinstance(value, kind))


def _load_all(source: str | Path, kind: str, objects: list[Any], states: list[Any]) -> None:
    if len(objects) != len(states):
        raise I2IError(f"{source} holds {len(states)} {kind} but the model has {len(objects)}: it was saved by another "
                       "model or version. Resume without it by deleting the file (weights-only resume).")
    for obj, saved in zip(objects, states):
        obj.load_state_dict(saved)
