"""The drivers end to end, as a user runs them: train then test, and one clear line for each bad input."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.helpers import aligned_dataset, load_script, run_script, tiny_args, unaligned_dataset, write_images


def assert_clean_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr
    error_lines = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in error_lines[0], error_lines[0]


@pytest.mark.parametrize("model, make_data, extra", [
    ("cycle_gan", unaligned_dataset, []),
    ("pix2pix", aligned_dataset, ["--netG", "unet_128", "--load_size", "128", "--crop_size", "128"]),
])
def test_train_then_test_writes_checkpoints_log_and_results_page(tmp_path, model, make_data, extra):
    root = make_data(tmp_path / "data", count=3)
    common = tiny_args(root, tmp_path, train=False)[: -2] + ["--model", model, "--name", "run", *extra]
    train = run_script("train.py", common + ["--display_id", "0", "--n_epochs", "1", "--n_epochs_decay", "1",
                                             "--print_freq", "2", "--num_threads", "0"], cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    run_dir = tmp_path / "checkpoints" / "run"
    names = ["G_A", "G_B", "D_A", "D_B"] if model == "cycle_gan" else ["G", "D"]
    for prefix in ("latest", "2"):
        for name in names:
            assert (run_dir / f"{prefix}_net_{name}.pth").is_file()
    log = (run_dir / "loss_log.txt").read_text()
    assert log.startswith("================ Training Loss (")
    # 3 samples an epoch, print_freq 2: totals 2, 4, 6 -> epoch 1 iters 2, epoch 2 iters 1 and 3.
    assert [line[:22] for line in log.splitlines()[1:]] == ["(epoch: 1, iters: 2, t", "(epoch: 2, iters: 1, t", "(epoch: 2, iters: 3, t"]
    opts = json.loads((run_dir / "train_opt.json").read_text())
    assert opts["model"] == model and (run_dir / "train_opt.txt").is_file()

    # --batch_size 2: both images of the batch are saved.
    test = run_script("test.py", common + ["--num_threads", "0", "--num_test", "2", "--batch_size", "2"],
                      cwd=tmp_path)
    assert test.returncode == 0, test.stderr[-3000:]
    page_dir = tmp_path / "results" / "run" / "test_latest"
    html = (page_dir / "index.html").read_text()
    images = sorted(p.name for p in (page_dir / "images").glob("*.png"))
    fake = "fake_B"
    assert f"000_{fake}.png" in images and f"001_{fake}.png" in images and not any(i.startswith("002_") for i in images)
    assert f"images/000_{fake}.png" in html
    assert "--num_test 2 stopped after 2 of 3 images" in test.stdout


def test_frequencies_fire_at_any_batch_size():
    crossed = load_script("train").crossed
    fired = [total for total in range(3, 31, 3) if crossed(total, 3, 4)]
    assert fired == [6, 9, 12, 18, 21, 24, 30], "one print per multiple of 4 passed, with batch size 3"


def test_unknown_choice_suggests_the_closest_name(tmp_path):
    result = run_script("train.py", ["--model", "cyclegan"], cwd=tmp_path)
    assert_clean_error(result, "--model", "cycle_gan")


def test_missing_dataroot_folder(tmp_path):
    result = run_script("train.py", tiny_args(tmp_path / "nowhere", tmp_path), cwd=tmp_path)
    assert_clean_error(result, "nowhere")


def test_empty_trainB_is_named(tmp_path):
    root = tmp_path / "data"
    write_images(root / "trainA", 2)
    (root / "trainB").mkdir()
    result = run_script("train.py", tiny_args(root, tmp_path), cwd=tmp_path)
    assert_clean_error(result, "trainB")


def test_unreadable_image_is_named(tmp_path):
    root = unaligned_dataset(tmp_path / "data")
    (root / "trainA" / "broken.png").write_bytes(b"not a png at all")
    result = run_script("train.py", tiny_args(root, tmp_path) + ["--serial_batches", "--n_epochs", "1",
                                                                 "--n_epochs_decay", "0"], cwd=tmp_path)
    assert_clean_error(result, "broken.png")


def test_image_smaller_than_crop(tmp_path):
    root = unaligned_dataset(tmp_path / "data", size=16)
    result = run_script("train.py", tiny_args(root, tmp_path, size=32) + ["--preprocess", "crop"], cwd=tmp_path)
    assert_clean_error(result, "--crop_size")


def test_image_size_not_fitting_the_unet(tmp_path):
    root = tmp_path / "images"
    write_images(root, 1, (100, 100))
    result = run_script("test.py", tiny_args(root, tmp_path, train=False) + [
        "--model", "test", "--netG", "unet_128", "--preprocess", "none", "--name", "fresh"], cwd=tmp_path)
    # No checkpoint exists: the checkpoint error comes first and names the file.
    assert_clean_error(result, "latest_net_G.pth")
    pix = tmp_path / "pix"
    aligned_dataset(pix, count=1, size=96)
    args = tiny_args(pix, tmp_path, size=96) + ["--model", "pix2pix", "--netG", "unet_128", "--preprocess", "none",
                                                "--n_epochs", "1", "--n_epochs_decay", "0"]
    assert_clean_error(run_script("train.py", args, cwd=tmp_path), "128", "--preprocess")


def test_checkpoint_that_does_not_match_the_options(tmp_path):
    root = unaligned_dataset(tmp_path / "data")
    train = run_script("train.py", tiny_args(root, tmp_path) + ["--name", "cg", "--n_epochs", "1",
                                                                "--n_epochs_decay", "0"], cwd=tmp_path)
    assert train.returncode == 0, train.stderr[-3000:]
    # Like the reference's files, without train_opt.json (which test.py would read the architecture from).
    (tmp_path / "checkpoints" / "cg" / "train_opt.json").unlink()
    # cycle_gan trains without dropout; --model test keeps dropout unless --no_dropout is given.
    result = run_script("test.py", tiny_args(root / "testA", tmp_path, train=False) + [
        "--model", "test", "--name", "cg", "--model_suffix", "_A"], cwd=tmp_path)
    assert_clean_error(result, "latest_net_G_A.pth", "--no_dropout")


def test_cuda_missing_falls_back_to_cpu_with_one_warning(tmp_path):
    root = unaligned_dataset(tmp_path / "data")
    args = [a for a in tiny_args(root, tmp_path) if a not in ("--gpu_ids", "-1")]
    result = run_script("train.py", args + ["--n_epochs", "1", "--n_epochs_decay", "0"], cwd=tmp_path)
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("CUDA is not available") == 1


def test_corrupt_checkpoint_gives_a_clear_message(tmp_path):
    (tmp_path / "checkpoints" / "bad").mkdir(parents=True)
    (tmp_path / "checkpoints" / "bad" / "latest_net_G.pth").write_bytes(b"\x80\x02garbage")
    root = tmp_path / "images"
    write_images(root, 1)
    result = run_script("test.py", tiny_args(root, tmp_path, train=False) + ["--model", "test", "--name", "bad"],
                        cwd=tmp_path)
    assert_clean_error(result, "latest_net_G.pth")


def test_grayscale_results_stay_single_channel(tmp_path):
    root = tmp_path / "images"
    write_images(root, 1)
    train_root = unaligned_dataset(tmp_path / "data")
    args = tiny_args(train_root, tmp_path) + ["--name", "gray", "--input_nc", "1", "--output_nc", "1",
                                              "--n_epochs", "1", "--n_epochs_decay", "0"]
    assert run_script("train.py", args, cwd=tmp_path).returncode == 0
    test = run_script("test.py", tiny_args(train_root, tmp_path, train=False) + [
        "--name", "gray", "--model", "cycle_gan", "--input_nc", "1", "--output_nc", "1"], cwd=tmp_path)
    assert test.returncode == 0, test.stderr[-2000:]
    image = Image.open(tmp_path / "results" / "gray" / "test_latest" / "images" / "000_fake_B.png")
    assert image.mode == "L"
