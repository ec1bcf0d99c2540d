"""Export: every registered generator as ONNX (run in onnxruntime) and TorchScript, matching PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from networks import GENERATORS, build_generator
from inference.export import export_onnx, export_torchscript

SIZES = [(1, 3, 64, 64), (2, 3, 70, 99)]  # the second is no multiple of 2: every generator pads and crops it


def _generator(name: str):
    torch.manual_seed(0)
    return build_generator(name, 3, 3, 8, norm="instance").eval()


def _reference(net, x):
    """The expected output, made without the exported wrapper (inference.sizing.SizeAdapter): the input padded at
    the bottom and right by repeating its edge pixels (numpy's "edge" mode) to the generator's stated multiple,
    the bare network run on that, and the result sliced back to the input's size."""
    multiple = net.size_multiple
    h, w = x.shape[-2:]
    padded = np.pad(x.numpy(), [(0, 0), (0, 0), (0, -h % multiple), (0, -w % multiple)], mode="edge")
    with torch.no_grad():
        out = net(torch.from_numpy(padded)).numpy()
    assert padded.shape[-2:] != tuple(x.shape[-2:]) or (h % multiple == 0 and w % multiple == 0)
    return out[:, :, :h, :w]


@pytest.mark.parametrize("name", GENERATORS.names())
def test_onnx_export_matches_pytorch_on_two_sizes(name, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    net = _generator(name)
    path = export_onnx(net, tmp_path / f"{name}.onnx", input_nc=3)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for shape in SIZES:
        x = torch.rand(*shape) * 2 - 1
        (out,) = session.run(None, {"input": x.numpy()})
        assert out.shape == shape
        assert np.abs(out - _reference(net, x)).max() < 1e-4


# TorchScript scripting is slow on a shared 2-core CPU: one generator by default, all with -m slow.
@pytest.mark.filterwarnings("ignore::FutureWarning")
@pytest.mark.parametrize("name", [n if n == "resnet_6blocks" else pytest.param(n, marks=pytest.mark.slow)
                                  for n in GENERATORS.names()])
def test_torchscript_export_matches_pytorch_on_two_sizes(name, tmp_path):
    net = _generator(name)
    path = export_torchscript(net, tmp_path / f"{name}.pt", input_nc=3)
    loaded = torch.jit.load(str(path))
    for shape in SIZES:
        x = torch.rand(*shape) * 2 - 1
        with torch.no_grad():
            out = loaded(x).numpy()
        assert out.shape == shape
        assert np.abs(out - _reference(net, x)).max() < 1e-4


def test_export_py_without_a_dataroot_takes_no_demo_presets(tmp_path, monkeypatch, capsys):
    """export.py reads no dataset: no --dataroot must not bring the demo's presets (--model test's suffix _A)."""
    pytest.importorskip("onnx")
    from tests.helpers import load_script
    from util.checkpoint import save_state_dict

    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    net = build_generator("resnet_9blocks", 3, 3, 8, norm="instance")
    save_state_dict(net.state_dict(), tmp_path / "checkpoints" / "tiny_G" / "latest_net_G.pth")
    written = load_script("export").main(["--name", "tiny_G", "--model", "test", "--no_dropout", "--ngf", "8",
                                          "--format", "onnx", "--gpu_ids", "-1"])
    assert written == {"G": Path("checkpoints") / "tiny_G" / "latest_net_G.onnx"}
    assert written["G"].stat().st_size > 0
    assert "demo" not in capsys.readouterr().out and not (tmp_path / "datasets").exists()


@pytest.mark.parametrize("output", ["residual", "affine", "affine_smooth"])
def test_onnx_export_of_a_generator_that_transforms_its_input(output, tmp_path):
    """--residual_output and --affine_output run as forward hooks: the exported graph must contain them. The last
    convolution is given random weights, as training would, so the hook's arithmetic shows in the output."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    torch.manual_seed(0)
    smoothed = {"affine": True, "affine_smooth": 5, "affine_edge_sigma": 0.1}  # the cycle_gan recipe's output
    flags = smoothed if output == "affine_smooth" else {output: True}
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance", **flags).eval()
    last = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)][-1]
    with torch.no_grad():
        last.weight.normal_(0, 0.05)
        last.bias.normal_(0, 0.3)
    path = export_onnx(net, tmp_path / f"{output}.onnx", input_nc=3)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    (out,) = session.run(None, {"input": x.numpy()})
    expected = _reference(net, x)
    assert np.abs(expected - x.numpy()).max() > 0.1  # the hook changes the input
    assert np.abs(out - expected).max() < 1e-4
