"""The speed benchmarks run and print their table (smoke runs at tiny sizes; slow, so not in the default run)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.helpers import ROOT


def run(script: str, *args: str, tmp_path, env: dict | None = None) -> tuple[str, dict]:
    out = tmp_path / f"{script}.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--quick", "--json", str(out), *args],
                            capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, json.loads(out.read_text())


def infer_speed():
    """benchmarks/infer_speed.py as a module."""
    name = "i2i_bench_infer_speed"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "infer_speed.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before running it: its dataclass looks itself up there
        saved = list(sys.path)
        try:
            spec.loader.exec_module(module)
        finally:
            sys.path[:] = saved  # it puts benchmarks/ first, for itself
    return sys.modules[name]


@pytest.mark.slow
def test_train_speed_prints_the_table_and_json(tmp_path):
    stdout, data = run("train_speed.py", "--configs", "cycle_gan_128", "--variants", "fp32,amp", tmp_path=tmp_path)
    assert "GFLOP/it" in stdout and "cycle_gan_128" in stdout
    rows = data["results"]
    assert [r["variant"] for r in rows] == ["fp32", "amp"]
    assert all(r["gflop_per_iter"] > 0 and 0 < r["fraction"] and r["peak_mem_gib"] > 0 for r in rows)


@pytest.mark.slow
def test_infer_speed_prints_the_table_and_json(tmp_path):
    stdout, data = run("infer_speed.py", "--configs", "resnet_9blocks_256", "--variants", "fp32", "--batch_sizes", "2",
                       tmp_path=tmp_path)
    assert "img/s" in stdout
    configs = [r["config"] for r in data["results"]]
    assert configs == ["resnet_9blocks_256", "test.py (jpg->png)"]


@pytest.mark.slow
def test_reference_speed_compares_both_sides_in_alternating_processes(tmp_path):
    stdout, data = run("reference_speed.py", "--configs", "pix2pix_256", "--rounds", "2", tmp_path=tmp_path)
    assert "speed-up" in stdout
    (row,) = data["results"]
    assert row["config"] == "pix2pix_256" and len(row["pairs"]) == 2 and row["speedup"] > 0
    assert all(pair["reference"]["conv_peak_gflops"] > 0 and pair["i2i"]["median_s"] > 0 for pair in row["pairs"])


def test_the_reference_side_runs_with_pytorchs_default_runtime():
    """The reference side must not get i2i's allocator tuning: benchmarks/common.py skips it when told to."""
    probe = ("import os, sys; os.environ['I2I_BENCH_PLAIN_RUNTIME'] = '1'; sys.path.insert(0, 'benchmarks'); "
             "import common; print('util.cpu_setup' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.slow
def test_infer_speed_times_the_onnxruntime_backend_too(tmp_path):
    pytest.importorskip("onnxruntime")
    _, data = run("infer_speed.py", "--configs", "unet_256", "--variants", "fp32", "--batch_sizes", "1", "--images",
                  "0", "--onnxruntime", tmp_path=tmp_path)
    assert [r["variant"] for r in data["results"]] == ["fp32", "onnxruntime"]
    assert all(r["img_per_s"] > 0 and r["gflop_per_img"] > 0 for r in data["results"])  # FLOPs: the torch network's


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
@pytest.mark.parametrize("script", ["train_speed.py", "scaling.py"])
def test_device_cuda_without_a_gpu_is_one_clear_line(script):
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--device", "cuda"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --device cuda: no CUDA GPU is usable here"), result.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_train_speed_on_a_gpu_prints_the_table_and_json(tmp_path):
    stdout, data = run("train_speed.py", "--device", "cuda", "--configs", "pix2pix_256", "--variants", "fp32,amp",
                       "--no_scaling", tmp_path=tmp_path)
    assert [(r["variant"], r["batch"]) for r in data["results"]] == [("fp32", 1), ("amp", 1), ("fp32", 8), ("amp", 8)]
    assert all(r["device"] == "cuda" and r["median_s"] > 0 and r["peak_mem_gib"] > 0 for r in data["results"])


@pytest.mark.slow
def test_train_speed_sweep_reports_step_memory_and_ratios(tmp_path):
    """--sweep: with and without --checkpoint_activations, each row with the steps' own memory (from just before the
    first step) next to the process's peak, and each +ckpt row with its ratios to the plain one."""
    stdout, data = run("train_speed.py", "--sweep", "--sweep_sizes", "256", tmp_path=tmp_path)  # --quick: 32 px
    assert "step GiB" in stdout and "time x eq. rate" in stdout
    plain, ckpt = data["results"]
    assert (plain["variant"], ckpt["variant"]) == ("fp32", "fp32+ckpt")
    for r in (plain, ckpt):
        assert 0 <= r["step_mem_gib"] < r["peak_mem_gib"]
    assert ckpt["peak_ratio"] == pytest.approx(ckpt["peak_mem_gib"] / plain["peak_mem_gib"])
    assert ckpt.get("step_ratio", 1) == pytest.approx(ckpt["step_mem_gib"] / plain["step_mem_gib"]
                                                      if plain["step_mem_gib"] else 1)
    assert ckpt["time_ratio_equal_rate"] > 0 and "step_ratio" not in plain


# -- infer_speed.py: test.py end to end against the reference's test.py, --weights, --photos ------------------

FAKE_START_S, FAKE_PER_IMAGE_S = 0.2, 0.3
FAKE_REFERENCE_TEST = f"""
import argparse, json, os, shutil, sys, time
from pathlib import Path

parser = argparse.ArgumentParser()
for flag in ("--dataroot", "--name", "--model", "--netG", "--norm", "--ngf", "--checkpoints_dir", "--results_dir",
             "--num_test", "--load_size", "--crop_size", "--gpu_ids"):
    parser.add_argument(flag, required=True)
parser.add_argument("--no_dropout", action="store_true")
parser.add_argument("--eval", action="store_true")
opt = parser.parse_args()
log = Path(os.environ["FAKE_REFERENCE_LOG"])
with log.open("a") as f:
    f.write(json.dumps({{"argv": sys.argv[1:], "cwd": os.getcwd(), "sys_path": sys.path,
                        "pythonpath": os.environ.get("PYTHONPATH", ""),
                        "dataroot_images": len(list(Path(opt.dataroot).glob("*.jpg")))}}) + "\\n")
shutil.copyfile(Path(opt.checkpoints_dir) / opt.name / "latest_net_G.pth", log.with_name("latest_net_G.pth"))
time.sleep({FAKE_START_S})
out = Path(opt.results_dir) / opt.name / "test_latest" / "images"
out.mkdir(parents=True)
images = sorted(Path(opt.dataroot).glob("*.jpg"))[:int(opt.num_test)]
for image in images[:len(images) - (os.environ.get("FAKE_REFERENCE_SHORT") == "1")]:
    time.sleep({FAKE_PER_IMAGE_S})
    shutil.copyfile(image, out / (image.stem + "_fake.png"))  # the input as its "translation"
"""


def fake_reference_checkout(root: Path) -> Path:
    """Something shaped like a checkout of the reference, whose test.py logs what it was given, sleeps a known
    time per image and writes one fake per image: only the plumbing (arguments, environment, rates)."""
    (root / "models").mkdir(parents=True)
    (root / "models" / "test_model.py").write_text("")
    (root / "test.py").write_text(FAKE_REFERENCE_TEST)
    return root


@pytest.mark.slow
def test_infer_speed_times_a_reference_checkouts_test_py_between_i2is_rows(tmp_path):
    """The plumbing of --reference_checkout, with a fake checkout: the reference's test.py runs before and after
    i2i's row on the small and the large count, in a fresh process outside the repository with i2i off its
    sys.path and PYTHONPATH, with its --model test flags and the rows' weights as latest_net_G.pth; the steady rate
    is the difference of the two runs, and i2i's row is compared with the mean of the reference runs around it."""
    checkout = fake_reference_checkout(tmp_path / "checkout")
    log = tmp_path / "log" / "calls.jsonl"
    log.parent.mkdir()
    env = {**os.environ, "FAKE_REFERENCE_LOG": str(log), "PYTHONPATH": str(ROOT)}
    _, data = run("infer_speed.py", "--configs", "resnet_9blocks_256", "--variants", "fp32", "--batch_sizes", "1",
                  "--images_small", "2", "--images", "4", "--reference_checkout", str(checkout), tmp_path=tmp_path,
                  env=env)
    network, *e2e = data["results"]
    assert [(r["side"], r["variant"]) for r in e2e] == [("reference", "fp32"), ("i2i", "fp32"), ("reference", "fp32")]
    reference, i2i = e2e[0], e2e[1]
    for r in e2e:
        assert (r["images_small"], r["images"]) == (2, 4)
        steady = r["seconds_large"] - r["seconds_small"]  # not always above 0 for i2i's 2 more images of 64 px
        assert r["img_per_s"] == (pytest.approx(2 / steady) if steady > 0 else None)
        assert r["whole_img_per_s"] == pytest.approx(4 / r["seconds_large"])
        assert r["weights_sha256"] == network["weights_sha256"]  # the network rows' weights (random, seed 0)
    for r in (e2e[0], e2e[2]):  # start-up cancels out: the fake's rate is its sleep per image
        assert r["img_per_s"] == pytest.approx(1 / FAKE_PER_IMAGE_S, rel=0.25)
        assert r["whole_s"] > 4 * FAKE_PER_IMAGE_S + FAKE_START_S
        assert r["model_check_max"] > 10  # its "fakes" are its inputs: not the generator's output
    assert i2i["ref_whole_img_s"] == pytest.approx((e2e[0]["whole_img_per_s"] + e2e[2]["whole_img_per_s"]) / 2)
    assert i2i["vs_ref_whole"] == pytest.approx(i2i["whole_img_per_s"] / i2i["ref_whole_img_s"])
    assert i2i["ref_steady_img_s"] == pytest.approx((e2e[0]["img_per_s"] + e2e[2]["img_per_s"]) / 2)
    if i2i["img_per_s"] is not None:  # 2 more images of 64 px may take no measurable time
        assert i2i["vs_ref_steady"] == pytest.approx(i2i["img_per_s"] / i2i["ref_steady_img_s"])
    assert i2i["model_check_max"] <= 1 and i2i["png_diff_max"] == 0  # the baseline itself
    assert reference["png_diff_max"] > 10  # compared with i2i's fakes although it ran first
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert [c["argv"][c["argv"].index("--num_test") + 1] for c in calls] == ["2", "4", "2", "4"]
    for call in calls:
        argv = call["argv"]
        flag = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
        assert (flag["--model"], flag["--netG"], flag["--norm"], flag["--ngf"], flag["--gpu_ids"]) == \
            ("test", "resnet_9blocks", "instance", "8", "-1")
        assert (flag["--load_size"], flag["--crop_size"]) == ("64", "64") and "--no_dropout" in argv
        assert "--eval" in argv
        assert call["dataroot_images"] == 4  # one folder for both counts
        assert not Path(call["cwd"]).resolve().is_relative_to(ROOT)
        assert Path(call["sys_path"][0]).resolve() == checkout.resolve()
        assert ROOT not in [Path(p or ".").resolve() for p in call["sys_path"]]
        assert str(ROOT) not in call["pythonpath"]
    module = infer_speed()
    assert module.state_digest(torch.load(log.with_name("latest_net_G.pth"))) == network["weights_sha256"]


@pytest.mark.slow
def test_infer_speed_stops_when_the_reference_writes_too_few_images(tmp_path):
    checkout = fake_reference_checkout(tmp_path / "checkout")
    env = {**os.environ, "FAKE_REFERENCE_LOG": str(tmp_path / "calls.jsonl"), "FAKE_REFERENCE_SHORT": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "infer_speed.py"), "--quick", "--json",
                             str(tmp_path / "out.json"), "--configs", "resnet_9blocks_256", "--variants", "fp32",
                             "--batch_sizes", "1", "--images_small", "2", "--images", "4", "--reference_checkout",
                             str(checkout)], capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode != 0 and "wrote 1 fake images, not 2" in result.stderr


@pytest.mark.slow
def test_infer_speed_runs_the_reference_checkouts_own_test_py(tmp_path):
    """Against a real checkout (I2I_REFERENCE_CHECKOUT): the reference's test.py loads the same weights and writes
    the same fakes as i2i's test.py (within one 8-bit level), for the ResNet and the U-Net."""
    checkout = os.environ.get("I2I_REFERENCE_CHECKOUT")
    if not checkout:
        pytest.skip("no reference checkout: set I2I_REFERENCE_CHECKOUT to a checkout of pytorch-CycleGAN-and-pix2pix "
                    "to time its test.py against i2i's")
    _, data = run("infer_speed.py", "--variants", "fp32", "--batch_sizes", "1", "--images_small", "2", "--images",
                  "4", "--photos", "--reference_checkout", checkout, tmp_path=tmp_path)
    e2e = [r for r in data["results"] if "side" in r]
    assert [(r["net"], r["side"]) for r in e2e] == [(net, side) for net in ("resnet_9blocks_256", "unet_256")
                                                    for side in ("reference", "i2i", "reference")]
    for r in e2e:
        assert r["model_check_max"] <= 1 and r["png_diff_max"] <= 1, r  # the generator's own output
        assert r["whole_img_per_s"] > 0 and r["seconds_large"] > 0
    for r in e2e[1::3]:
        assert r["vs_ref_whole"] > 0
    assert data["meta"]["reference_checkout"] == str(Path(checkout).resolve())


def distinctive_weights(path: Path) -> Path:
    """A resnet_9blocks generator (ngf 8) whose outputs are far from those of the benchmark's random weights."""
    from networks import build_generator

    torch.manual_seed(1)
    net = build_generator("resnet_9blocks", 3, 3, 8, norm="instance", use_dropout=False)
    with torch.no_grad():
        [*net.parameters()][-1].add_(1.0)  # the last convolution's bias: outputs near tanh(x + 1)
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow
def test_infer_speed_weights_reach_every_row(tmp_path):
    """--weights: the network rows (fp32 and int8), the int8 calibration and the end-to-end checkpoint all carry
    the file's weights, and the fp32 output is that of a generator loaded from the file."""
    pytest.importorskip("onnxruntime")
    from networks import build_generator

    weights = distinctive_weights(tmp_path / "run" / "latest_net_G_A.pth")
    _, data = run("infer_speed.py", "--variants", "fp32", "--int8", "--batch_sizes", "1", "--images_small", "2",
                  "--images", "4", "--weights", str(weights), tmp_path=tmp_path)
    rows = data["results"]
    assert [(r["config"], r["variant"]) for r in rows] == [
        ("resnet_9blocks_256", "fp32"), ("resnet_9blocks_256", "onnxruntime_int8"),
        ("test.py (jpg->png)", "fp32"), ("test.py (jpg->png)", "onnxruntime_int8")]
    module = infer_speed()
    state = torch.load(weights)
    assert {r["weights_sha256"] for r in rows} == {module.state_digest(state)}
    assert all(r["weights"] == str(weights.resolve()) for r in rows)
    net = build_generator("resnet_9blocks", 3, 3, 8, norm="instance", use_dropout=False).eval()
    net.load_state_dict(state)
    module.write_inputs(tmp_path / "inputs", 4, 64, photos=False)  # the network rows' 4 images (--quick: 64 px)
    images = sorted((tmp_path / "inputs" / "images").glob("*.jpg"))
    from PIL import Image

    batch = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB"), dtype=np.float32) / 127.5 - 1)
                         .permute(2, 0, 1) for p in images])
    with torch.no_grad():
        expected = net(batch)
    assert expected.mean() > 0.3  # far from the random weights' outputs
    assert rows[0]["fp32_output_mean"] == pytest.approx(float(expected.mean()), abs=1e-4)
    assert rows[2]["model_check_max"] <= 1  # test.py's fakes: the same generator's output
    # int8 calibrated on this generator: near its fp32 output (a quantisation of other weights would be far from it)
    assert rows[1]["psnr_db"] > 30 and rows[3]["png_psnr_db"] > 30 and rows[3]["net_psnr_db"] == rows[1]["psnr_db"]
    assert rows[3]["calibration_psnr_db"] > 30  # what test.py printed, on the calibration images


def test_infer_speed_reads_the_weights_architecture(tmp_path):
    """--weights: --ngf from the file, --residual_output/--affine_output/--affine_smooth/--affine_edge_sigma from
    the train_opt.json beside it; other networks refused."""
    module = infer_speed()
    weights = distinctive_weights(tmp_path / "run" / "latest_net_G_A.pth")
    plain = {"ngf": 8, "residual_output": False, "affine_output": False, "affine_smooth": 1, "affine_edge_sigma": 0.0}
    assert module.weights_architecture(weights, "resnet_9blocks_256") == plain
    (weights.parent / "train_opt.json").write_text(json.dumps({"netG": "resnet_9blocks", "residual_output": True}))
    assert module.weights_architecture(weights, "resnet_9blocks_256") == plain | {"residual_output": True}
    (weights.parent / "train_opt.json").write_text(json.dumps({"netG": "resnet_9blocks", "affine_output": True}))
    assert module.weights_architecture(weights, "resnet_9blocks_256") == plain | {"affine_output": True}
    recipe = {"affine_output": True, "affine_smooth": 5, "affine_edge_sigma": 0.1}
    (weights.parent / "train_opt.json").write_text(json.dumps({"netG": "resnet_9blocks", **recipe}))
    arch = module.weights_architecture(weights, "resnet_9blocks_256")
    assert arch == plain | recipe
    assert module.architecture_flags(arch) == ["--ngf", "8", "--affine_output", "--affine_smooth", "5",
                                               "--affine_edge_sigma", "0.1"]
    with pytest.raises(SystemExit, match="resnet_9blocks"):
        module.weights_architecture(weights, "unet_256")


@pytest.mark.parametrize("photos", [True, False])
def test_infer_speed_calibrates_int8_on_other_images_than_it_scores(tmp_path, photos):
    """The folder to translate and the calibration folder share no image (--photos: crops of other photographs),
    and the first images are the same whatever the count (the network rows score the end-to-end folder's first)."""
    if photos:
        pytest.importorskip("skimage")
    from PIL import Image

    module = infer_speed()
    images, calibration = module.write_inputs(tmp_path / "a", 12, 64, photos=photos)
    few, _ = module.write_inputs(tmp_path / "b", 3, 64, photos=photos)
    read = [np.asarray(Image.open(p)) for p in sorted(images.glob("*.jpg"))]
    calibrating = [np.asarray(Image.open(p)) for p in sorted(calibration.glob("*.jpg"))]
    assert len(read) == 12 and len(calibrating) == module.CALIBRATION_IMAGES
    assert all(a.shape == (64, 64, 3) for a in read + calibrating)
    firsts = sorted(few.glob("*.jpg"))
    assert all(np.array_equal(a, np.asarray(Image.open(p))) for a, p in zip(read[:3], firsts, strict=True))
    assert len({a.tobytes() for a in read + calibrating}) == len(read) + len(calibrating)
    closest = min(np.abs(a.astype(int) - c).mean() for a in read for c in calibrating)
    assert closest > 5  # not near-copies either
    smoothness = np.mean([np.abs(np.diff(a.astype(int), axis=1)).mean() for a in read])
    assert (smoothness < 40) == photos  # photographs are smooth; uniform noise is not (about 85)


def test_the_best_backend_verdict_leaves_int8_to_its_own_line():
    bench = infer_speed()

    def row(variant, ratio, within):
        return {"net": "unet_256", "side": "i2i", "variant": variant, "batch": 1, "vs_ref_steady": ratio,
                "vs_ref_whole": ratio, "within_1_255": within, "net_diff_max_levels": 0.2, "net_psnr_db": 76.0,
                "images": 200}

    lines = bench.verdicts([row("fp32", 1.2, True), row("onnxruntime", 2.1, True), row(bench.INT8, 2.4, True)])
    assert lines[0].startswith("unet_256: best float backend within 1/255 of fp32: onnxruntime batch 1, 2.10x")
    assert lines[1].startswith("unet_256: int8 batch 1: 2.40x")
