"""int8 generators: the generator exported to ONNX, quantised statically by onnxruntime, and run by it.

onnxruntime's static QDQ scheme: int8 weights (per output channel), uint8 activations calibrated on images
preprocessed as the run's inputs are. Only the convolutions are quantised, and not the last one (the output
layer): normalisations, residual additions and transposed convolutions stay float, which is where int8 lost most
(a trained resnet_9blocks at 256 px: 28.9 dB against fp32 with every operator quantised, 45.4 dB so, and as
fast). The file is cached beside the checkpoint (`<epoch>_net_<name>.int8.onnx`) under a key of the weights and
calibration tensors. Every use states the error against the fp32 PyTorch output on the calibration images (mean
and largest absolute difference, PSNR).
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from util.errors import I2IError
from util.files import atomic_write

from .export import INPUT_NAME, export_onnx
from .sizing import SizeAdapter

CACHE_SUFFIX = ".int8.onnx"
KEY_FIELD, ERROR_FIELD = "i2i_int8_key", "i2i_int8_error"
QUANTISED_OPS = ["Conv"]
CONVOLUTIONS = ("Conv", "ConvTranspose")
SCHEME = f"{QUANTISED_OPS} but the output layer"  # part of the cache key: a change of scheme quantises again


@dataclass(frozen=True)
class Int8Error:
    """How far the int8 output is from the fp32 output, measured on `images` calibration images."""

    mean: float
    max: float
    psnr: float
    images: int

    def line(self, name: str, cached: bool) -> str:
        origin = "cached int8 model" if cached else "quantised to int8"
        return (f"{name}: {origin}; on {self.images} calibration images, |int8 - fp32| mean {self.mean:.4f}, "
                f"max {self.max:.4f} (outputs in [-1, 1]), PSNR {self.psnr:.1f} dB")


def require_onnxruntime():
    """onnxruntime's quantisation module, or one clear line on how to install it."""
    try:
        import onnx  # noqa: F401  (the exporter and the quantiser need it)
        from onnxruntime import quantization
    except ImportError:
        raise I2IError("int8 inference needs the onnx and onnxruntime packages: pip install onnx onnxruntime") \
            from None
    return quantization


def input_channels(net: nn.Module) -> int:
    """The channels `net` takes: those of its first convolution."""
    first = next((m for m in net.modules() if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)), None)
    if first is None:
        raise I2IError(f"{type(net).__name__} has no convolution: int8 quantisation knows only convolutional "
                       "generators.")
    return first.in_channels


def cache_key(net: nn.Module, calibration: Sequence[torch.Tensor]) -> str:
    """A digest of the weights and the calibration tensors themselves (so also of their preprocessing)."""
    from onnxruntime import __version__ as ort_version

    digest = hashlib.sha256(ort_version.encode() + SCHEME.encode())
    for name, tensor in net.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    for tensor in calibration:
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


class _Batches:
    """onnxruntime's CalibrationDataReader protocol over a list of tensors (get_next until None)."""

    def __init__(self, tensors: Sequence[torch.Tensor]) -> None:
        self.tensors, self.position = tensors, 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.position >= len(self.tensors):
            return None
        self.position += 1
        return {INPUT_NAME: self.tensors[self.position - 1].float().cpu().numpy()}

    def rewind(self) -> None:
        self.position = 0


def quantize(net: nn.Module, calibration: Sequence[torch.Tensor], folder: Path) -> Path:
    """Export `net` to ONNX in `folder` and quantise it statically (QDQ) with `calibration`; the int8 file."""
    quantization = require_onnxruntime()
    fp32 = export_onnx(net, folder / "fp32.onnx", input_channels(net))
    prepared = folder / "prepared.onnx"
    quantization.quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
    output_layer = last_convolution(prepared)
    reader = type("CalibrationImages", (_Batches, quantization.CalibrationDataReader), {})(calibration)
    int8 = folder / "int8.onnx"
    level = logging.root.level
    logging.root.setLevel(logging.ERROR)  # else a warning per normalisation constant left whole
    try:
        quantization.quantize_static(str(prepared), str(int8), reader, quant_format=quantization.QuantFormat.QDQ,
                                     per_channel=True, activation_type=quantization.QuantType.QUInt8,
                                     weight_type=quantization.QuantType.QInt8,
                                     calibrate_method=quantization.CalibrationMethod.MinMax,
                                     op_types_to_quantize=QUANTISED_OPS, nodes_to_exclude=output_layer)
    finally:
        logging.root.setLevel(level)
    return int8


def last_convolution(model_path: Path) -> list[str]:
    """The name of the graph's last convolution, the output layer (its error reaches the pixels undamped)."""
    import onnx

    convolutions = [node.name for node in onnx.load(str(model_path)).graph.node if node.op_type in CONVOLUTIONS]
    return convolutions[-1:]


def measure_error(net: nn.Module, session_run: Callable[[np.ndarray], np.ndarray],
                  calibration: Sequence[torch.Tensor]) -> Int8Error:
    """The int8 output (`session_run`) against `net`'s fp32 output in eval mode, over the calibration images."""
    from metrics.paired import psnr

    reference = SizeAdapter(copy.deepcopy(net).cpu().float().eval())
    means, maxima, psnrs = [], [], []
    with torch.no_grad():
        for x in calibration:
            fp32 = reference(x.float().cpu())
            int8 = torch.from_numpy(session_run(x.float().cpu().numpy()))
            difference = (int8 - fp32).abs()
            means.append(float(difference.mean()))
            maxima.append(float(difference.max()))
            psnrs.append(float(psnr(int8, fp32, data_range=2.0).mean()))
    return Int8Error(float(np.mean(means)), float(np.max(maxima)), float(np.mean(psnrs)), len(calibration))


def cached(cache: Path, key: str) -> Int8Error | None:
    """The stored error of the int8 file at `cache` if it was made under `key`, else None."""
    if not cache.is_file():
        return None
    import onnx

    try:
        meta = {p.key: p.value for p in onnx.load(str(cache), load_external_data=False).metadata_props}
    except Exception:  # a damaged cache is made again
        return None
    if meta.get(KEY_FIELD) != key or ERROR_FIELD not in meta:
        return None
    return Int8Error(**json.loads(meta[ERROR_FIELD]))


def store(int8: Path, cache: Path, key: str, error: Int8Error) -> None:
    """Write the int8 model to `cache` atomically, with its key and its measured error in the metadata."""
    import onnx

    model = onnx.load(str(int8))
    for field, value in ((KEY_FIELD, key), (ERROR_FIELD, json.dumps(asdict(error)))):
        entry = model.metadata_props.add()
        entry.key, entry.value = field, value
    atomic_write(cache, lambda f: f.write(model.SerializeToString()))


def int8_generator(net: nn.Module, name: str, paths: Sequence[Path], to_tensor: Callable[[Path], torch.Tensor], *,
                   cache: Path, source: str) -> nn.Module:
    """`net` quantised to int8 (or its cached int8 file) run by onnxruntime on the CPU; prints the error.

    `to_tensor` makes a calibration image's 1 x C x H x W tensor with the run's own preprocessing."""
    from .onnx_backend import OnnxGenerator

    require_onnxruntime()
    if not paths:
        raise I2IError(f"no calibration images in {source}: int8 quantisation needs a few dozen of the images the "
                       "model translates; pass --calibration_dir FOLDER.")
    calibration = [to_tensor(path) for path in paths]
    key = cache_key(net, calibration)
    error = cached(cache, key)
    if error is None:
        with tempfile.TemporaryDirectory() as folder:
            int8 = quantize(net, calibration, Path(folder))
            session = OnnxGenerator(int8).session
            error = measure_error(net, lambda x: session.run(None, {INPUT_NAME: x})[0], calibration)
            store(int8, cache, key, error)
        print(error.line(name, cached=False) + f"; saved {cache}")
    else:
        print(error.line(name, cached=True) + f" ({cache})")
    return OnnxGenerator(cache)


def image_paths(folder: Path, count: int) -> list[Path]:
    """The first `count` images under `folder`, sorted (none if it is not a folder)."""
    from data.image_folder import is_image_file

    if not folder.is_dir():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and is_image_file(p.name))[:count]
