"""Loading checkpoints people already own, and explaining in option terms why one does not fit.

A checkpoint is a bare state_dict: the architecture is not stored, it is implied by the options
(`--netG/--netD`, `--norm`, `--no_dropout`, `--ngf/--ndf`, `--input_nc/--output_nc`, `--n_layers_D`).
When the options are wrong, PyTorch's "Missing key(s) ... Unexpected key(s) ..." says nothing about
which option to change; `describe_mismatch` reads the stored keys and shapes and says it.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.instancenorm import _InstanceNorm

from util.errors import I2IError

StateDict = Mapping[str, torch.Tensor]
_STAT_KEYS = ("running_mean", "running_var", "num_batches_tracked")


def _unwrap_data_parallel(net: nn.Module, state_dict: StateDict) -> StateDict:
    prefix = "module."
    if state_dict and all(k.startswith(prefix) for k in state_dict):
        if not any(k.startswith(prefix) for k in net.state_dict()):
            return OrderedDict((k[len(prefix):], v) for k, v in state_dict.items())
    return state_dict


def strip_legacy_norm_keys(net: nn.Module, state_dict: StateDict) -> OrderedDict[str, torch.Tensor]:
    """A copy of `state_dict` that `net` can load strictly despite the quirks of older files.

    - drops running-stat entries aimed at an InstanceNorm that has no such buffer (PyTorch < 0.4 saved
      them; the published CycleGAN files carry them);
    - adds a zero `num_batches_tracked` to BatchNorm layers saved before that buffer existed (what
      PyTorch itself does for version-less entries) and drops the `_metadata` attribute;
    - removes a `module.` prefix left by saving an `nn.DataParallel` wrapper.
    """
    cleaned: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in _unwrap_data_parallel(net, state_dict).items():
        path, _, leaf = key.rpartition(".")
        if leaf in _STAT_KEYS:
            try:
                module = net.get_submodule(path)
            except AttributeError:
                module = None
            if isinstance(module, _InstanceNorm) and getattr(module, leaf, None) is None:
                continue
        cleaned[key] = value
    for path, module in net.named_modules():
        if isinstance(module, _BatchNorm) and module.num_batches_tracked is not None:
            if f"{path}.running_mean" in cleaned and f"{path}.num_batches_tracked" not in cleaned:
                cleaned[f"{path}.num_batches_tracked"] = torch.zeros((), dtype=torch.long)
    return cleaned


@dataclass(frozen=True)
class _Layout:
    """What a state_dict reveals about the options that built it (None: cannot tell)."""

    family: str | None  # resnet | unet | nlayer | pixel | cut
    depth: int | None  # resnet blocks, U-Net levels, PatchGAN n_layers
    norm: str | None
    dropout: bool | None  # only visible in ResNet files (index shift)
    width: int | None
    in_nc: int | None
    out_nc: int | None

    @property
    def kind(self) -> str | None:
        return {"resnet": "G", "unet": "G", "nlayer": "D", "pixel": "D"}.get(self.family or "")

    def net_option(self) -> str | None:
        """The `--netG/--netD` value that builds this layout, if a built-in one does."""
        if self.family == "resnet":
            return f"--netG resnet_{self.depth}blocks" if self.depth in (6, 9) else None
        if self.family == "unet":
            return {8: "--netG unet_256", 7: "--netG unet_128"}.get(self.depth or 0)
        if self.family == "nlayer":
            return "--netD basic" if self.depth == 3 else f"--netD n_layers --n_layers_D {self.depth}"
        return "--netD pixel" if self.family == "pixel" else None

    def describe(self) -> str:
        if self.family == "resnet":
            return f"a ResNet generator with {self.depth} blocks"
        if self.family == "unet":
            return f"a U-Net generator with {self.depth} levels"
        if self.family == "nlayer":
            return f"a PatchGAN discriminator with {self.depth} layers"
        return "a pixel discriminator" if self.family == "pixel" else "an unknown network"


def _natural_key(key: str) -> tuple:
    # Module order, whatever order the dict was saved in: model.2 < model.10, model.model.1.* < model.model.3.
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in key.split("."))


def _layout(state_dict: StateDict) -> _Layout:
    tensors = {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    convs = sorted((k[: -len(".weight")] for k, v in tensors.items() if k.endswith(".weight") and v.dim() == 4),
                   key=_natural_key)
    if not convs:
        return _Layout(None, None, None, None, None, None, None)
    first, last = tensors[convs[0] + ".weight"].shape, tensors[convs[-1] + ".weight"].shape
    batch = any(k.endswith(".running_mean") and k[: -len("running_mean")] + "weight" in tensors for k in tensors)
    norm = "batch" if batch else "instance" if all(c + ".bias" in tensors for c in convs) else "none"
    family, depth, dropout, out_nc = None, None, None, None
    if any(k.endswith(".filt") for k in tensors):
        family = "cut"
    elif any(".conv_block." in k for k in tensors):
        family, out_nc = "resnet", last[0]
        depth = len({k.split(".")[1] for k in tensors if ".conv_block." in k})
        dropout = any(c.endswith("conv_block.6") for c in convs)
    elif all(k.startswith("model.model.") for k in tensors):
        family, out_nc = "unet", last[1]  # the outermost up-conv is transposed: [in, out, k, k]
        depth = 1 + max(c.split(".").count("model") - 2 for c in convs)
    elif all(k.startswith("net.") for k in tensors):
        family = "pixel"
    elif all(k.startswith("model.") for k in tensors) and first[-1] == 4:
        family, depth = "nlayer", len(convs) - 2
    return _Layout(family, depth, norm, dropout, first[0], first[1], out_nc)


def _hints(stored: _Layout, built: _Layout) -> list[str]:
    """Reasons, each with the option that fixes it, for the differences between two layouts."""
    if stored.family == "cut":
        return ["it holds anti-aliased layers (`.filt` buffers) saved by the CUT code, a layout these networks lack"]
    if stored.kind is None or built.kind is None:
        return []
    if stored.kind != built.kind:
        role = {"G": "generator", "D": "discriminator"}
        return [f"it holds a {role[stored.kind]}, not a {role[built.kind]} (check the file name)"]
    hints = []
    if (stored.family, stored.depth) != (built.family, built.depth):
        option = stored.net_option()
        fix = f"use {option}" if option else "no built-in name fits; use the plugin that made it"
        hints.append(f"it holds {stored.describe()}, the options build {built.describe()} ({fix})")
    if stored.norm != built.norm:
        hints.append(f"its norm layers are '{stored.norm}', not '{built.norm}' (use --norm {stored.norm})")
    if stored.family == built.family == "resnet" and stored.dropout != built.dropout:
        hints.append("it was saved with dropout layers (leave out --no_dropout)" if stored.dropout
                     else "it was saved without dropout layers (add --no_dropout)")
    if stored.width != built.width:
        flag = "--ngf" if built.kind == "G" else "--ndf"
        hints.append(f"its first layer is {stored.width} channels wide, not {built.width} (use {flag} {stored.width})")
    if built.kind == "G" and (stored.in_nc, stored.out_nc) != (built.in_nc, built.out_nc):
        hints.append(f"it maps {stored.in_nc} to {stored.out_nc} channels, the options {built.in_nc} to "
                     f"{built.out_nc} (set --input_nc / --output_nc)")
    if built.kind == "D" and stored.in_nc != built.in_nc:
        hints.append(f"it takes {stored.in_nc} input channels, the options give {built.in_nc} (set --input_nc / "
                     "--output_nc; a conditional discriminator sees both)")
    return hints


def _key_report(expected: StateDict, stored: StateDict) -> str:
    missing = [k for k in expected if k not in stored]
    unexpected = [k for k in stored if k not in expected]
    reshaped = [k for k in expected if k in stored and getattr(stored[k], "shape", None) != expected[k].shape]
    parts = []
    for label, keys in (("missing", missing), ("unexpected", unexpected)):
        if keys:
            parts.append(f"{len(keys)} {label} key(s) ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})")
    for key in reshaped[:2]:
        parts.append(f"{key} is {list(stored[key].shape)} in the file but {list(expected[key].shape)} here")
    return "; ".join(parts)


def describe_mismatch(net: nn.Module, state_dict: StateDict, *, net_name: str) -> str | None:
    """None if `state_dict` fits `net` once `strip_legacy_norm_keys` has cleaned it (key for key, shape for
    shape); otherwise one sentence saying which options to change, read from the stored keys and shapes."""
    expected = net.state_dict()
    cleaned = strip_legacy_norm_keys(net, state_dict)
    same_shapes = all(getattr(cleaned.get(k), "shape", None) == v.shape for k, v in expected.items())
    if same_shapes and set(expected) == set(cleaned):
        return None
    stored_sn, built_sn = (any(".parametrizations.weight." in k for k in keys) for keys in (state_dict, expected))
    if stored_sn != built_sn:
        fix = "add --spectral_norm" if stored_sn else "leave out --spectral_norm"
        return (f"the stored weights of net {net_name} were saved with other options: its convolutions are "
                f"{'' if stored_sn else 'not '}spectrally normalised ({fix}).")
    # Read the layout from the file as stored: stripping can remove BatchNorm statistics aimed at InstanceNorm.
    hints = _hints(_layout(_unwrap_data_parallel(net, state_dict)), _layout(expected))
    if hints:
        return f"the stored weights of net {net_name} were saved with other options: {'; '.join(hints)}."
    return (f"the stored weights of net {net_name} do not fit the network built from the options: "
            f"{_key_report(expected, cleaned)}; check --netG/--netD, --norm, --no_dropout, --ngf/--ndf "
            "and --input_nc/--output_nc.")


def load_state_dict_compat(net: nn.Module, state_dict: StateDict, *, net_name: str, source: str) -> None:
    """Load `state_dict` (read from `source`) into `net` strictly, after `strip_legacy_norm_keys`; an I2IError
    naming `source` and the options to change when the weights do not fit."""
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        found = f"keys {list(state_dict)[:5]}" if isinstance(state_dict, Mapping) else type(state_dict).__name__
        raise I2IError(f"{source}: expected a state_dict (a mapping of names to tensors) for net {net_name}, "
                       f"found {found}. Point to a weights file saved with torch.save(net.state_dict(), path).")
    problem = describe_mismatch(net, state_dict, net_name=net_name)
    if problem:
        raise I2IError(f"{source}: {problem}")
    net.load_state_dict(strip_legacy_norm_keys(net, state_dict), strict=True)

