"""int8 inference (--backend onnxruntime_int8): close to fp32, its error stated, its cache reused, clear errors."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from networks import build_generator
from tests.helpers import load_script, write_images
from util.errors import I2IError

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

ERROR_LINE = re.compile(r"G_A: (quantised to int8|cached int8 model); on (\d+) calibration images, \|int8 - fp32\| "
                        r"mean ([\d.]+), max ([\d.]+) \(outputs in \[-1, 1\]\), PSNR ([\d.]+) dB")
# A random-weight resnet_6blocks (ngf 8) on noise images measures about 39 dB; 30 dB leaves room for other
# onnxruntime releases while a broken quantisation (wrong scales, uncalibrated ranges) lands far below it.
MIN_PSNR_DB = 30.0


def run_folder(tmp_path):
    folder = tmp_path / "checkpoints" / "run"
    folder.mkdir(parents=True)
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance")
    torch.save(net.state_dict(), folder / "latest_net_G_A.pth")
    (folder / "train_opt.json").write_text(json.dumps({
        "model": "cycle_gan", "netG": "resnet_6blocks", "ngf": 8, "norm": "instance", "no_dropout": True,
        "input_nc": 3, "output_nc": 3, "dataroot": str(tmp_path / "data")}))
    write_images(tmp_path / "data" / "testA", 2, (40, 40))
    write_images(tmp_path / "data" / "trainA", 8, (40, 40), seed=5)
    return folder


def argv_of(tmp_path, results: str, *extra: str) -> list[str]:
    return ["--dataroot", str(tmp_path / "data" / "testA"), "--name", "run", "--checkpoints_dir",
            str(tmp_path / "checkpoints"), "--results_dir", str(tmp_path / results), "--model", "test",
            "--model_suffix", "_A", "--gpu_ids", "-1", "--num_threads", "0", "--load_size", "32", "--crop_size", "32",
            *extra]


def fakes(tmp_path, results: str) -> list[np.ndarray]:
    paths = sorted((tmp_path / results).rglob("*_fake.png"))
    return [np.asarray(Image.open(p), dtype=np.float64) for p in paths]


def test_int8_is_close_to_fp32_states_its_error_and_reuses_its_cache(tmp_path, capsys):
    folder = run_folder(tmp_path)
    test = load_script("test")
    test.main(argv_of(tmp_path, "int8", "--backend", "onnxruntime_int8"))
    first = ERROR_LINE.search(capsys.readouterr().out)
    assert first and first[1] == "quantised to int8" and first[2] == "8"  # the 8 images of trainA
    assert float(first[5]) >= MIN_PSNR_DB and float(first[3]) < float(first[4]) < 0.5
    cache = folder / "latest_net_G_A.int8.onnx"
    stamp = cache.stat().st_mtime_ns

    test.main(argv_of(tmp_path, "int8_again", "--backend", "onnxruntime_int8"))
    again = ERROR_LINE.search(capsys.readouterr().out)
    assert again and again[1] == "cached int8 model" and again.groups()[1:] == first.groups()[1:]
    assert cache.stat().st_mtime_ns == stamp

    test.main(argv_of(tmp_path, "fp32"))
    for int8, fp32 in zip(fakes(tmp_path, "int8"), fakes(tmp_path, "fp32"), strict=True):
        psnr = 10 * np.log10(255**2 / np.mean((int8 - fp32) ** 2))
        assert psnr >= MIN_PSNR_DB


def test_changed_weights_or_calibration_images_change_the_cache_key():
    from inference.int8 import cache_key

    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance")
    images = [torch.zeros(1, 3, 8, 8)]
    key = cache_key(net, images)
    assert cache_key(net, [torch.ones(1, 3, 8, 8)]) != key
    with torch.no_grad():
        next(net.parameters()).add_(1)
    assert cache_key(net, images) != key


def test_a_missing_calibration_folder_is_one_clear_message(tmp_path):
    run_folder(tmp_path)
    missing = tmp_path / "nowhere"
    with pytest.raises(I2IError, match=r"^--calibration_dir .*nowhere does not exist"):
        load_script("test").main(argv_of(tmp_path, "r", "--backend", "onnxruntime_int8",
                                           "--calibration_dir", str(missing)))


def test_no_calibration_images_names_where_it_looked(tmp_path):
    run_folder(tmp_path)
    for image in (tmp_path / "data" / "trainA").iterdir():
        image.unlink()
    with pytest.raises(I2IError, match=r"no calibration images in .*trainA.*pass --calibration_dir"):
        load_script("test").main(argv_of(tmp_path, "r", "--backend", "onnxruntime_int8"))


def test_translate_py_int8_calibrates_on_the_runs_training_images(tmp_path, capsys):
    folder = run_folder(tmp_path)
    written = load_script("translate").main([str(tmp_path / "data" / "testA"), "--checkpoint", str(folder),
                                             "--output", str(tmp_path / "out"), "--backend", "onnxruntime_int8",
                                             "--num_threads", "0"])
    assert len(written) == 2 and all(Image.open(p).size == (40, 40) for p in written)
    line = ERROR_LINE.search(capsys.readouterr().out)
    assert line and line[2] == "8" and float(line[5]) >= MIN_PSNR_DB


def test_without_onnxruntime_int8_is_one_install_line(monkeypatch):
    from inference.int8 import require_onnxruntime

    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)
    with pytest.raises(I2IError, match="pip install onnx onnxruntime"):
        require_onnxruntime()


def test_only_the_inner_convolutions_are_quantised(tmp_path):
    """Normalisations, residual additions, transposed convolutions and the output layer stay float: quantising
    them cost a trained resnet_9blocks 16 dB against fp32 (28.9 against 45.4 dB) for no speed."""
    import onnx

    from inference.int8 import quantize

    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance").eval()
    graph = onnx.load(str(quantize(net, [torch.rand(1, 3, 32, 32) * 2 - 1 for _ in range(2)], tmp_path))).graph
    producer = {output: node.op_type for node in graph.node for output in node.output}
    int8_weights = [producer.get(node.input[1]) == "DequantizeLinear" for node in graph.node
                    if node.op_type in ("Conv", "ConvTranspose")]
    assert int8_weights == [True] * 15 + [False] * 3  # stem 1, down 2, 6 blocks × 2; up 2 (transposed), the output
    consumers = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for quantise in (node for node in graph.node if node.op_type == "QuantizeLinear" and node.input[0] in producer):
        readers = [reader.op_type for dequantise in consumers[quantise.output[0]]
                   for reader in consumers[dequantise.output[0]]]
        assert producer[quantise.input[0]] == "Conv" or set(readers) == {"Conv"}, quantise.name  # conv in or out
