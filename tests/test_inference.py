"""Inference: any size in, same size out; tiles with whole-image statistics; the Python API; test.py paths."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from networks import build_generator
from util.errors import I2IError
from inference.translator import InferenceGenerator, load_translator
from inference.sizing import SizeAdapter, size_multiple
from inference.tiling import translate_tiled


@pytest.mark.parametrize("name, multiple", [("resnet_6blocks", 4), ("unet_128", 128)])
def test_any_size_in_same_size_out(name, multiple):
    net = build_generator(name, 3, 3, 8, norm="instance").eval()
    assert size_multiple(net) == multiple
    with torch.no_grad():
        out = InferenceGenerator(net)(torch.rand(1, 3, 301, 517) * 2 - 1)
    assert out.shape == (1, 3, 301, 517)


def test_padding_leaves_sizes_that_fit_untouched():
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance").eval()
    x = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(SizeAdapter(net)(x), net(x))


def _small_field_net() -> nn.Module:
    """Instance norms (one affine) and a stride-2 level, but a receptive field of a few pixels."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 8, 3, stride=2, padding=1), nn.InstanceNorm2d(8, affine=True), nn.ReLU(),
                        nn.ConvTranspose2d(8, 3, 4, stride=2, padding=1), nn.Tanh())
    net[4].weight.data.uniform_(0.5, 1.5)
    net[4].bias.data.uniform_(-0.5, 0.5)
    return net.eval()


def test_tiles_use_whole_image_statistics():
    """With tiles wider than the receptive field, tiling reproduces the whole-image result: after one pass per
    norm layer to about 1e-6, while each tile normalising itself (the naive way) is visibly off."""
    net = _small_field_net()
    x = torch.rand(1, 3, 100, 140) * 2 - 1
    x[..., :50, :] += 0.5  # the top half is brighter, so tiles' own statistics differ
    with torch.no_grad():
        whole = net(x)
    naive = (translate_tiled(net, x, 48, 16, stat_passes=0) - whole).abs().max()
    one_pass = (translate_tiled(net, x, 48, 16, stat_passes=1) - whole).abs().max()
    exact = (translate_tiled(net, x, 48, 16, stat_passes=2) - whole).abs().max()
    assert naive > 0.1 and one_pass < naive and exact < 1e-5
    assert all(isinstance(m, nn.InstanceNorm2d) for m in (net[1], net[4]))  # the swap is undone


def test_tiles_of_a_data_parallel_network_keep_their_statistics():
    """test.py --tile with several --gpu_ids: the network is DataParallel, whose per-call copies would collect the
    whole-image statistics and drop them (issue 17, point 9); tiles run on the plain network."""
    from tests.helpers import ReplicatingParallel

    net = _small_field_net()
    x = torch.rand(1, 3, 100, 140) * 2 - 1
    x[..., :50, :] += 0.5
    with torch.no_grad():
        whole = net(x)
        tiled = InferenceGenerator(ReplicatingParallel(net), tile=48, overlap=16)(x)
    assert (tiled - whole).abs().max() < 1e-5


def test_one_tile_equals_the_whole_image_for_a_resnet():
    net = build_generator("resnet_6blocks", 3, 3, 8, norm="instance").eval()
    x = torch.rand(1, 3, 50, 70) * 2 - 1
    with torch.no_grad():
        whole = SizeAdapter(net)(x)
    assert (translate_tiled(net, x, 128, 32) - whole).abs().max() < 1e-5


def _checkpoint(tmp_path, netG="resnet_6blocks"):
    folder = tmp_path / "checkpoints" / "run"
    folder.mkdir(parents=True)
    net = build_generator(netG, 3, 3, 8, norm="instance")
    torch.save(net.state_dict(), folder / "latest_net_G_A.pth")
    options = {"model": "cycle_gan", "netG": netG, "ngf": 8, "norm": "instance", "no_dropout": True,
               "input_nc": 3, "output_nc": 3, "init_type": "normal", "init_gain": 0.02}
    (folder / "train_opt.json").write_text(json.dumps(options))
    return folder, net.eval()


def test_python_api_translates_any_size_with_the_saved_architecture(tmp_path):
    folder, net = _checkpoint(tmp_path)
    translate = load_translator(folder)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (301, 517, 3), dtype=np.uint8))
    out = translate(image)
    assert out.size == image.size and out.mode == "RGB"
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    with torch.no_grad():
        expected = ((SizeAdapter(net)(x).clamp(-1, 1) + 1) / 2 * 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.array_equal(np.asarray(out), expected)


def test_load_translator_finds_a_safetensors_checkpoint(tmp_path):
    pytest.importorskip("safetensors")
    from util.checkpoint import save_state_dict

    folder, net = _checkpoint(tmp_path)
    (folder / "latest_net_G_A.pth").unlink()
    save_state_dict(net.state_dict(), folder / "latest_net_G.safetensors")  # G, not G_A: the default is found
    translate = load_translator(folder)
    for p, q in zip(translate.net.net.state_dict().values(), net.state_dict().values()):
        assert torch.equal(p.cpu(), q)
    with pytest.raises(I2IError, match="latest_net_G_B.pth does not exist.*latest_net_G.safetensors"):
        load_translator(folder, generator="G_B")


def test_translate_cli_writes_same_size_images(tmp_path):
    from tests.helpers import load_script, write_images

    folder, _ = _checkpoint(tmp_path)
    write_images(tmp_path / "in", 2, (45, 30))
    load_script("translate").main([str(tmp_path / "in"), "--checkpoint", str(folder), "--output",
                                   str(tmp_path / "out")])
    outs = sorted((tmp_path / "out").iterdir())
    assert [p.name for p in outs] == ["000.png", "001.png"]
    assert all(Image.open(p).size == (45, 30) for p in outs)


def test_test_py_keeps_the_input_size_with_preprocess_none(tmp_path):
    from tests.helpers import load_script, write_images

    folder, _ = _checkpoint(tmp_path)
    (folder / "latest_net_G_A.pth").rename(folder / "latest_net_G.pth")
    write_images(tmp_path / "imgs", 1, (517, 301))
    load_script("test").main(["--dataroot", str(tmp_path / "imgs"), "--name", "run", "--checkpoints_dir",
                              str(tmp_path / "checkpoints"), "--results_dir", str(tmp_path / "results"),
                              "--model", "test", "--netG", "resnet_6blocks", "--ngf", "8", "--no_dropout",
                              "--preprocess", "none", "--gpu_ids", "-1", "--num_threads", "0"])
    fakes = list((tmp_path / "results").rglob("*fake*.png"))
    assert fakes and all(Image.open(p).size == (517, 301) for p in fakes)


def test_test_py_runs_an_exported_onnx_model(tmp_path):
    pytest.importorskip("onnxruntime")
    from tests.helpers import load_script, write_images

    folder, net = _checkpoint(tmp_path)
    common = ["--name", "run", "--checkpoints_dir", str(tmp_path / "checkpoints"), "--model", "test",
              "--model_suffix", "_A", "--netG", "resnet_6blocks", "--ngf", "8", "--no_dropout", "--gpu_ids", "-1"]
    written = load_script("export").main(common)
    assert written["G_A"] == folder / "latest_net_G_A.onnx"
    write_images(tmp_path / "imgs", 2, (36, 28))
    run = ["--dataroot", str(tmp_path / "imgs"), "--preprocess", "none", "--num_threads", "0", *common]
    load_script("test").main([*run, "--results_dir", str(tmp_path / "onnx"), "--backend", "onnxruntime"])
    load_script("test").main([*run, "--results_dir", str(tmp_path / "torch")])
    compared = 0
    for onnx_png in sorted((tmp_path / "onnx").rglob("*_fake.png")):
        torch_png = tmp_path / "torch" / onnx_png.relative_to(tmp_path / "onnx")
        a, b = np.asarray(Image.open(onnx_png), dtype=int), np.asarray(Image.open(torch_png), dtype=int)
        assert a.shape == (28, 36, 3) and np.abs(a - b).max() <= 1  # 8-bit rounding of a <1e-4 difference
        compared += 1
    assert compared == 2  # one translation per input image, or the loop above proved nothing


def _test_py_tiled(tmp_path, folder_name: str, *extra: str) -> np.ndarray:
    from tests.helpers import load_script

    load_script("test").main(["--dataroot", str(tmp_path / "wide"), "--name", "run", "--checkpoints_dir",
                              str(tmp_path / "checkpoints"), "--results_dir", str(tmp_path / folder_name),
                              "--model", "test", "--netG", "resnet_6blocks", "--ngf", "8", "--no_dropout",
                              "--preprocess", "none", "--gpu_ids", "-1", "--num_threads", "0", *extra])
    (fake,) = (tmp_path / folder_name).rglob("*_fake.png")
    return np.asarray(Image.open(fake), dtype=int)


@pytest.mark.slow  # three test.py runs, one of 20 passes over the tiles: ~45 s on 2 loaded cores
def test_test_py_tiles_a_wide_image_as_the_untiled_run(tmp_path):
    """test.py --tile 256 on a 64 x 1024 image (four tiles and their overlaps) with a ResNet generator gives the
    untiled output, once the statistics passes have reached its 17 instance norms; each tile normalising
    itself (--tile_stat_passes 0) is visibly off, so the comparison can see a broken tiling."""
    folder, _ = _checkpoint(tmp_path)
    (folder / "latest_net_G_A.pth").rename(folder / "latest_net_G.pth")
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 200, (64, 1024, 3))
    pixels[:, :400] += 55  # a brighter left part: tiles' own statistics differ from the whole image's
    (tmp_path / "wide").mkdir()
    Image.fromarray(pixels.astype(np.uint8)).save(tmp_path / "wide" / "wide.png")
    whole = _test_py_tiled(tmp_path, "whole")
    tiled = _test_py_tiled(tmp_path, "tiled", "--tile", "256", "--tile_overlap", "64", "--tile_stat_passes", "20")
    naive = _test_py_tiled(tmp_path, "naive", "--tile", "256", "--tile_overlap", "64", "--tile_stat_passes", "0")
    assert whole.shape == tiled.shape == (64, 1024, 3)
    assert np.abs(naive - whole).mean() > 5  # 8-bit levels
    assert np.abs(tiled - whole).mean() < 0.5 and np.abs(tiled - whole).max() <= 8


def _links(page):
    """(img srcs, a hrefs) of an HTML page."""
    from html.parser import HTMLParser

    found = {"img": [], "a": []}

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "img":
                found["img"].append(attrs["src"])
            elif tag == "a" and attrs.get("href"):
                found["a"].append(attrs["href"])

    Collect().feed(page.read_text())
    return found["img"], found["a"]


def test_test_py_pages_more_than_100_inputs_with_working_links(tmp_path):
    from tests.helpers import load_script, write_images

    folder, _ = _checkpoint(tmp_path)
    (folder / "latest_net_G_A.pth").rename(folder / "latest_net_G.pth")
    write_images(tmp_path / "many", 101, (12, 12))
    load_script("test").main(["--dataroot", str(tmp_path / "many"), "--name", "run", "--checkpoints_dir",
                              str(tmp_path / "checkpoints"), "--results_dir", str(tmp_path / "results"),
                              "--model", "test", "--netG", "resnet_6blocks", "--ngf", "8", "--no_dropout",
                              "--preprocess", "none", "--gpu_ids", "-1", "--num_threads", "0", "--num_test", "101"])
    web = tmp_path / "results" / "run" / "test_latest"
    assert sorted(p.name for p in web.glob("*.html")) == ["index.html", "page_002.html"]
    first_imgs, first_links = _links(web / "index.html")
    second_imgs, second_links = _links(web / "page_002.html")
    assert len(first_imgs) == 2 * 100 and len(second_imgs) == 2  # real and fake for 100 inputs, then the 101st
    assert "images/100_fake.png" in second_imgs and "images/100_fake.png" not in first_imgs
    assert "page_002.html" in first_links and "index.html" in second_links
    for src in first_imgs + second_imgs + [h for h in first_links + second_links if h.startswith("images/")]:
        assert (web / src).is_file(), src
    for href in first_links + second_links:
        assert href.startswith("images/") or (web / href).is_file(), href


def test_background_worker_keeps_order_and_hands_back_a_failure():
    from util.background import BackgroundWorker

    done = []
    with BackgroundWorker(backlog=2) as worker:
        for i in range(5):
            worker.submit(done.append, i)
    assert done == [0, 1, 2, 3, 4]

    def fail():
        raise OSError("disk full")

    worker = BackgroundWorker()
    worker.submit(fail)
    with pytest.raises(OSError, match="disk full"):
        worker.close()


def test_translate_cli_batches_images_of_one_size_and_keeps_each_size(tmp_path):
    from tests.helpers import load_script, write_images

    folder, _ = _checkpoint(tmp_path)
    write_images(tmp_path / "in", 3, (20, 12))
    write_images(tmp_path / "in" / "sub", 2, (16, 24), seed=1)
    single = load_script("translate").main([str(tmp_path / "in"), "--checkpoint", str(folder), "--output",
                                            str(tmp_path / "one"), "--batch_size", "1", "--num_threads", "0"])
    batched = load_script("translate").main([str(tmp_path / "in"), "--checkpoint", str(folder), "--output",
                                             str(tmp_path / "four"), "--batch_size", "4", "--num_threads", "1"])
    assert [p.relative_to(tmp_path / "one") for p in single] == [p.relative_to(tmp_path / "four") for p in batched]
    for a, b in zip(single, batched):
        first, second = np.asarray(Image.open(a), dtype=int), np.asarray(Image.open(b), dtype=int)
        assert first.shape == second.shape and np.abs(first - second).max() <= 1  # eval mode: batching is exact
