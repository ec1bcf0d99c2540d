"""The bad-input catalogue of docs/troubleshooting.md: each case ends in one `error: ...` line naming the file or
option and the fix (no traceback), or — for images a viewer shows fine — decodes as the viewer shows it.

Covered elsewhere and not repeated here: empty or missing folders, a non-image file with an image extension and
images smaller than the crop (tests/test_cli.py, tests/test_data.py), 16-bit grayscale (tests/test_data.py),
an unwritable checkpoint folder (tests/test_options.py), disk full and permission errors mid-run
(tests/test_safety.py)."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from data.image_folder import load_image
from tests.helpers import tiny_args, unaligned_dataset, write_images
from tests.test_safety import assert_one_error_line, one_thread, run_cli  # noqa: F401  (fixture)
from util.errors import I2IError


def quick(root, tmp, *extra: str) -> list[str]:
    return tiny_args(root, tmp) + ["--ngf", "4", "--ndf", "4", "--netG", "resnet_6blocks", "--n_epochs", "1",
                                   "--n_epochs_decay", "0", "--pool_size", "0", *extra]


# -- files -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("workers", ["0", "1"])
def test_truncated_image_stops_with_its_name(workers, tmp_path, capsys):
    root = unaligned_dataset(tmp_path / "data")
    photo = root / "trainA" / "photo.jpg"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(photo, quality=95)
    photo.write_bytes(photo.read_bytes()[: photo.stat().st_size // 2])
    # A loader worker wraps the error in its traceback; the driver still shows one line.
    code, err = run_cli("train", quick(root, tmp_path, "--serial_batches", "--num_threads", workers), capsys)
    assert_one_error_line(code, err, "photo.jpg", "corrupt", "delete it")


def test_folder_of_non_image_files(tmp_path, capsys):
    root = unaligned_dataset(tmp_path / "data")
    for path in (root / "trainB").iterdir():
        path.unlink()
    (root / "trainB" / "notes.txt").write_text("not an image")
    (root / "trainB" / ".DS_Store").write_bytes(b"\0\0")
    code, err = run_cli("train", quick(root, tmp_path), capsys)
    assert_one_error_line(code, err, "trainB", "holds no images", ".png")


def test_transparent_pixels_are_laid_over_white(tmp_path):
    rgba = Image.new("RGBA", (2, 1), (0, 0, 0, 0))  # black, fully transparent ...
    rgba.putpixel((1, 0), (10, 20, 30, 255))          # ... next to an opaque pixel
    rgba.save(tmp_path / "rgba.png")
    image = load_image(tmp_path / "rgba.png")
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (255, 255, 255) and image.getpixel((1, 0)) == (10, 20, 30)
    palette = Image.new("P", (2, 1), 0)
    palette.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    palette.putpixel((1, 0), 1)
    palette.save(tmp_path / "palette.png", transparency=0)
    assert [load_image(tmp_path / "palette.png").getpixel((x, 0)) for x in (0, 1)] == [(255, 255, 255), (10, 20, 30)]
    assert load_image(tmp_path / "rgba.png", mode="L").getpixel((0, 0)) == 255


def test_palette_and_cmyk_convert_to_rgb(tmp_path):
    Image.new("RGB", (4, 4), (0, 0, 255)).convert("P").save(tmp_path / "p.png")
    assert load_image(tmp_path / "p.png").getpixel((0, 0)) == (0, 0, 255)
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg", quality=100)  # red in CMYK
    red = load_image(tmp_path / "cmyk.jpg").getpixel((4, 4))
    assert red[0] > 240 and red[1] < 15 and red[2] < 15, red


def test_exif_orientation_is_applied(tmp_path):
    photo = Image.new("RGB", (40, 20), (0, 0, 255))
    photo.paste((255, 0, 0), (0, 0, 20, 20))  # left half red, as stored by the camera
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    photo.save(tmp_path / "phone.jpg", exif=exif, quality=100)
    image = load_image(tmp_path / "phone.jpg")
    assert image.size == (20, 40)  # portrait, as a viewer shows it
    top, bottom = image.getpixel((10, 5)), image.getpixel((10, 35))
    assert top[0] > 200 and bottom[2] > 200, (top, bottom)


def test_float_grayscale_in_unit_range_is_scaled(tmp_path):
    Image.fromarray(torch.full((4, 4), 0.5).numpy(), mode="F").save(tmp_path / "float.tif")
    assert load_image(tmp_path / "float.tif").getpixel((0, 0)) == (128, 128, 128)


def test_truncated_png_is_named(tmp_path):
    write_images(tmp_path, 1, (32, 32))
    path = tmp_path / "000.png"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(I2IError, match="000.png.*corrupt"):
        load_image(path)


# -- data versus options -------------------------------------------------------------------------------------

def test_mixed_sizes_in_a_batch(tmp_path, capsys):
    root = unaligned_dataset(tmp_path / "data")
    write_images(root / "trainA", 1, (48, 32), prefix="wide")
    code, err = run_cli("train", quick(root, tmp_path, "--preprocess", "none", "--batch_size", "3",
                                       "--serial_batches"), capsys)
    assert_one_error_line(code, err, "differ in size", "wide000.png", "48x32", "--batch_size 1", "--preprocess")


def test_images_too_small_for_the_discriminator(tmp_path, capsys):
    root = unaligned_dataset(tmp_path / "data")
    code, err = run_cli("train", quick(root, tmp_path, "--load_size", "16", "--crop_size", "16"), capsys)
    assert_one_error_line(code, err, "too small for the networks", "24x24", "--crop_size", "--n_layers_D")


def test_input_nc_not_matching_the_data(tmp_path, capsys):
    root = unaligned_dataset(tmp_path / "data")
    code, err = run_cli("train", quick(root, tmp_path, "--input_nc", "4", "--lambda_identity", "0"), capsys)
    assert_one_error_line(code, err, "--input_nc 4", "3 channels", "--input_nc 1 or 3")


def test_paired_model_on_an_unaligned_folder(tmp_path, capsys):
    root = unaligned_dataset(tmp_path / "data")
    code, err = run_cli("train", quick(root, tmp_path, "--model", "pix2pix", "--netG", "resnet_6blocks"), capsys)
    assert_one_error_line(code, err, "unaligned (CycleGAN) layout", "--dataset_mode unaligned", "combine_A_and_B")


# -- the machine ---------------------------------------------------------------------------------------------

def test_gpu_id_that_does_not_exist(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    root = unaligned_dataset(tmp_path / "data")
    args = [a for a in quick(root, tmp_path) if a not in ("--gpu_ids", "-1")] + ["--gpu_ids", "3"]
    code, err = run_cli("train", args, capsys)
    assert_one_error_line(code, err, "--gpu_ids 3", "no GPU with id 3", "-1 for the CPU")


def test_cuda_out_of_memory_suggests_smaller_settings(tmp_path, capsys, monkeypatch):
    from models.cycle_gan_model import CycleGANModel

    def out_of_memory(self):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 7.79 GiB total)")

    monkeypatch.setattr(CycleGANModel, "optimize_parameters", out_of_memory)
    root = unaligned_dataset(tmp_path / "data")
    code, err = run_cli("train", quick(root, tmp_path), capsys)
    assert_one_error_line(code, err, "out of GPU memory", "Tried to allocate 2.00 GiB", "--batch_size",
                          "--crop_size", "--amp")
