"""Dataset modes, preprocessing, file discovery, the loader wrapper and the demo data."""

import argparse
import importlib
import logging
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import data  # noqa: E402
from data import DATASETS, PREPROCESS_MODES, BaseDataset, DatasetLoader, create_dataset  # noqa: E402
from data.base_dataset import RoundToMultiple, get_params, get_transform  # noqa: E402
from data.demo import make_aligned_demo, make_unaligned_demo  # noqa: E402
from data.image_folder import IMG_EXTENSIONS, is_image_file, load_image, make_dataset  # noqa: E402
from util.errors import I2IError  # noqa: E402


def make_opt(dataroot, **overrides) -> argparse.Namespace:
    opt = dict(
        dataroot=str(dataroot), dataset_mode="unaligned", phase="train", direction="AtoB", input_nc=3, output_nc=3,
        preprocess="resize_and_crop", load_size=40, crop_size=32, no_flip=False, serial_batches=False,
        max_dataset_size=sys.maxsize, batch_size=1, num_threads=0, isTrain=True, seed=None, gpu_ids=[],
    )
    opt.update(overrides)
    return argparse.Namespace(**opt)


def noise_image(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def write_images(folder: Path, names, size=(50, 38)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k, name in enumerate(names):
        noise_image(*size, seed=k).save(folder / name)
        paths.append(folder / name)
    return paths


@pytest.fixture
def unaligned_root(tmp_path):
    write_images(tmp_path / "trainA", ["a0.png", "a1.png", "a2.png"])
    write_images(tmp_path / "trainB", ["b0.png", "b1.png", "b2.png", "b3.png", "b4.png"])
    return tmp_path


@pytest.fixture
def aligned_root(tmp_path):
    folder = tmp_path / "train"
    folder.mkdir()
    for k in range(3):  # identical halves, so equal A and B after transforms prove a shared crop and flip
        half = noise_image(48, 44, seed=k)
        pair = Image.new("RGB", (96, 44))
        pair.paste(half, (0, 0))
        pair.paste(half, (48, 0))
        pair.save(folder / f"{k}.png")
    return tmp_path


# --- registry -------------------------------------------------------------------------------------------------

def test_builtin_modes_registered():
    assert {"unaligned", "aligned", "single"} <= set(DATASETS.names())
    for name in DATASETS.names():
        assert issubclass(DATASETS.get(name), BaseDataset)


def test_unknown_mode_names_valid_ones_and_closest():
    with pytest.raises(I2IError, match="--dataset_mode 'unalinged'.*Did you mean 'unaligned'"):
        DATASETS.get("unalinged")


def test_legacy_file_convention(tmp_path, monkeypatch, unaligned_root):
    """A dropped-in data/<name>_dataset.py with class <Name>Dataset and no decorator is found by name."""
    plugin_dir = tmp_path / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "legacy_probe_dataset.py").write_text(
        "from data.base_dataset import BaseDataset\n"
        "class LegacyProbeDataset(BaseDataset):\n"
        "    def __len__(self): return 7\n"
        "    def __getitem__(self, i): return {'A': i}\n"
    )
    monkeypatch.setattr(data, "__path__", [*data.__path__, str(plugin_dir)])
    monkeypatch.setattr(DATASETS, "_entries", dict(DATASETS._entries))
    monkeypatch.setattr(DATASETS, "_descriptions", dict(DATASETS._descriptions))
    monkeypatch.delitem(sys.modules, "data.legacy_probe_dataset", raising=False)
    importlib.invalidate_caches()
    loader = create_dataset(make_opt(unaligned_root, dataset_mode="legacy_probe"))
    assert type(loader.dataset).__name__ == "LegacyProbeDataset" and len(loader) == 7


def test_modify_commandline_options_returns_parser():
    parser = argparse.ArgumentParser()
    for name in DATASETS.names():
        assert DATASETS.get(name).modify_commandline_options(parser, True) is parser


# --- preprocessing ----------------------------------------------------------------------------------------------

# (w, h) of a 50x38 image after each mode with load_size=40, crop_size=32
EXPECTED_SIZE = {
    "resize_and_crop": (32, 32),
    "crop": (32, 32),
    "scale_width": (40, 32),  # height = max(40 * 38 / 50, crop_size) = 32
    "scale_width_and_crop": (32, 32),
    "none": (48, 40),  # each side rounded to the nearest multiple of 4
}


def test_every_preprocess_mode_is_tested():
    assert set(EXPECTED_SIZE) == set(PREPROCESS_MODES)


@pytest.mark.parametrize("preprocess", PREPROCESS_MODES)
@pytest.mark.parametrize("paired", [False, True])
def test_preprocess_shapes_and_range(preprocess, paired, tmp_path):
    opt = make_opt(tmp_path, preprocess=preprocess)
    img = noise_image(50, 38)
    params = get_params(opt, img.size) if paired else None
    out = get_transform(opt, params)(img)
    w, h = EXPECTED_SIZE[preprocess]
    assert out.shape == (3, h, w) and out.dtype == torch.float32
    assert out.min() >= -1 and out.max() <= 1
    assert out.min() < -0.9 and out.max() > 0.9  # noise spans the whole range: Normalize(0.5, 0.5) was applied


def test_scale_width_keeps_aspect_ratio_when_tall_enough(tmp_path):
    opt = make_opt(tmp_path, preprocess="scale_width", load_size=40, crop_size=16, no_flip=True)
    assert get_transform(opt)(noise_image(80, 60)).shape == (3, 30, 40)


def test_none_mode_rounds_with_one_warning(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(RoundToMultiple, "_warned", False)
    transform = get_transform(make_opt(tmp_path, preprocess="none", no_flip=True))
    with caplog.at_level(logging.WARNING, logger="data.base_dataset"):
        assert transform(noise_image(50, 38)).shape == (3, 40, 48)
        assert transform(noise_image(29, 31)).shape == (3, 32, 28)
        assert transform(noise_image(32, 36)).shape == (3, 36, 32)  # already multiples: untouched
    assert len([r for r in caplog.records if "multiple of 4" in r.getMessage()]) == 1


def test_grayscale_and_no_convert(tmp_path):
    opt = make_opt(tmp_path, preprocess="crop")
    gray = get_transform(opt, grayscale=True)(noise_image(40, 40))
    assert gray.shape == (1, 32, 32) and gray.min() >= -1 and gray.max() <= 1
    pil = get_transform(opt, convert=False)(noise_image(40, 40))
    assert isinstance(pil, Image.Image) and pil.size == (32, 32)


def test_pil_interpolation_constant_accepted(tmp_path):
    out = get_transform(make_opt(tmp_path), method=Image.Resampling.NEAREST)(noise_image(50, 38))
    assert out.shape == (3, 32, 32)


def test_paired_params_fix_crop_and_flip(tmp_path):
    opt = make_opt(tmp_path, preprocess="crop")
    img = noise_image(48, 48)
    params = get_params(opt, img.size)
    first = get_transform(opt, params)(img)
    assert all(torch.equal(first, get_transform(opt, params)(img)) for _ in range(3))
    x, y = params["crop_pos"]
    expected = img.crop((x, y, x + 32, y + 32))
    if params["flip"]:
        expected = expected.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    assert torch.allclose(first, torch.from_numpy(np.array(expected)).permute(2, 0, 1) / 127.5 - 1, atol=1e-6)


@pytest.mark.parametrize("preprocess", PREPROCESS_MODES)
def test_transforms_pickle(preprocess, tmp_path):
    opt = make_opt(tmp_path, preprocess=preprocess, no_flip=False)
    img = noise_image(50, 38)
    for params in (None, {"crop_pos": (3, 2), "flip": True}):
        transform = get_transform(opt, params, grayscale=True)
        restored = pickle.loads(pickle.dumps(transform))
        assert restored(img).shape == transform(img).shape
    fixed = get_transform(opt, {"crop_pos": (3, 2), "flip": True})
    assert torch.equal(pickle.loads(pickle.dumps(fixed))(img), fixed(img))


def test_unknown_preprocess(tmp_path):
    with pytest.raises(I2IError, match="--preprocess 'resize'.*scale_width_and_crop"):
        get_transform(make_opt(tmp_path, preprocess="resize"))


# --- file discovery and loading ------------------------------------------------------------------------------

def test_extensions_case_insensitive(tmp_path):
    assert {".webp", ".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".ppm"} == set(IMG_EXTENSIONS)
    for name in ["x.WEBP", "x.PNG", "x.JpEg", "x.tiff", "x.Bmp", "x.ppm"]:
        assert is_image_file(name)
    for name in ["x.txt", "x.png.bak", "png", "x.gif"]:
        assert not is_image_file(name)
    write_images(tmp_path, ["c.WEBP", "a.PNG", "b.JpEg"])
    (tmp_path / "notes.txt").write_text("not an image")
    paths = make_dataset(tmp_path)
    assert [Path(p).name for p in paths] == ["a.PNG", "b.JpEg", "c.WEBP"]
    assert load_image(paths[2]).size == (50, 38)  # webp readable


def test_make_dataset_recursive_sorted_then_truncated(tmp_path):
    # created in reverse order, so filesystem order would differ from sorted order
    write_images(tmp_path / "sub2", ["z.png", "y.png"])
    write_images(tmp_path / "sub1", ["b.png"])
    write_images(tmp_path, ["c.png", "a.png"])
    names = [Path(p).relative_to(tmp_path).as_posix() for p in make_dataset(tmp_path)]
    assert names == sorted(names) == ["a.png", "c.png", "sub1/b.png", "sub2/y.png", "sub2/z.png"]
    assert [Path(p).name for p in make_dataset(tmp_path, 2)] == ["a.png", "c.png"]


def test_load_image_modes_and_16bit(tmp_path):
    noise_image(8, 6).save(tmp_path / "rgb.png")
    assert load_image(tmp_path / "rgb.png").mode == "RGB"
    assert load_image(tmp_path / "rgb.png", "L").mode == "L"
    Image.fromarray(np.full((4, 4), 65535, dtype=np.uint16)).save(tmp_path / "deep.png")
    deep = load_image(tmp_path / "deep.png")
    assert deep.mode == "RGB" and deep.getpixel((0, 0)) == (255, 255, 255)
    Image.fromarray(np.full((4, 4), 32896, dtype=np.uint16)).save(tmp_path / "mid.png")  # 128 * 257
    assert load_image(tmp_path / "mid.png").getpixel((0, 0)) == (128, 128, 128)


# --- dataset modes ----------------------------------------------------------------------------------------------

def test_unaligned_items(unaligned_root):
    ds = DATASETS.get("unaligned")(make_opt(unaligned_root))
    assert len(ds) == 5  # max(|A|, |B|)
    item = ds[4]
    assert set(item) == {"A", "B", "A_paths", "B_paths"}
    assert item["A"].shape == item["B"].shape == (3, 32, 32)
    assert Path(item["A_paths"]).name == "a1.png"  # 4 mod 3
    torch.manual_seed(0)
    assert len({ds[0]["B_paths"] for _ in range(30)}) > 1  # random partner without --serial_batches


def test_unaligned_serial_pairing(unaligned_root):
    ds = DATASETS.get("unaligned")(make_opt(unaligned_root, serial_batches=True))
    pairs = [(Path(ds[i]["A_paths"]).name, Path(ds[i]["B_paths"]).name) for i in range(5)]
    assert pairs == [("a0.png", "b0.png"), ("a1.png", "b1.png"), ("a2.png", "b2.png"),
                     ("a0.png", "b3.png"), ("a1.png", "b4.png")]


@pytest.mark.parametrize("mode", ["unaligned", "aligned"])
@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_grayscale_channels_follow_direction(mode, direction, unaligned_root, aligned_root):
    root = unaligned_root if mode == "unaligned" else aligned_root
    item = DATASETS.get(mode)(make_opt(root, input_nc=1, output_nc=3, direction=direction))[0]
    # 'A' is always folder A (left half); with BtoA it feeds the output side, so it gets output_nc channels
    expected = (1, 3) if direction == "AtoB" else (3, 1)
    assert (item["A"].shape[0], item["B"].shape[0]) == expected


@pytest.mark.parametrize("direction, channels", [("AtoB", 1), ("BtoA", 3)])
def test_single_mode(direction, channels, unaligned_root):
    ds = DATASETS.get("single")(make_opt(unaligned_root, input_nc=1, output_nc=3, direction=direction))
    assert len(ds) == 8  # every image under dataroot, recursively, no phase folder
    item = ds[0]
    assert set(item) == {"A", "A_paths"} and item["A"].shape == (channels, 32, 32)


def test_aligned_splits_halves(tmp_path):
    (tmp_path / "train").mkdir()
    pair = Image.new("RGB", (80, 40), (255, 0, 0))
    pair.paste(Image.new("RGB", (40, 40), (0, 0, 255)), (40, 0))
    pair.save(tmp_path / "train" / "p.png")
    item = DATASETS.get("aligned")(make_opt(tmp_path, load_size=32, crop_size=32))[0]
    assert item["A_paths"] == item["B_paths"] == str(tmp_path / "train" / "p.png")
    assert item["A"].shape == item["B"].shape == (3, 32, 32)
    assert torch.allclose(item["A"].mean((1, 2)), torch.tensor([1.0, -1.0, -1.0]), atol=1e-3)  # left = A = red
    assert torch.allclose(item["B"].mean((1, 2)), torch.tensor([-1.0, -1.0, 1.0]), atol=1e-3)  # right = B = blue


@pytest.mark.parametrize("preprocess", PREPROCESS_MODES)
def test_aligned_shares_crop_and_flip(preprocess, aligned_root):
    ds = DATASETS.get("aligned")(make_opt(aligned_root, preprocess=preprocess))
    torch.manual_seed(0)
    crops = set()
    for _ in range(12):
        item = ds[0]
        assert torch.equal(item["A"], item["B"])
        crops.add(item["A"].numpy().tobytes())
    if preprocess not in ("scale_width", "none"):  # those do not crop; only the flip varies
        assert len(crops) > 2  # random crops really vary, so the equality above is meaningful
    else:
        assert len(crops) == 2


def test_max_dataset_size_caps_folders(unaligned_root):
    ds = DATASETS.get("unaligned")(make_opt(unaligned_root, max_dataset_size=2))
    assert [Path(p).name for p in ds.A_paths] == ["a0.png", "a1.png"] and len(ds) == 2


# --- loader -----------------------------------------------------------------------------------------------------

class _Numbers(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {"i": i}


class _RandomDraws(torch.utils.data.Dataset):
    def __len__(self):
        return 10

    def __getitem__(self, i):
        return torch.rand(3)


def test_loading_an_item_leaves_the_gpu_generators_alone(monkeypatch):
    """Items are drawn under their own seed; the training's generators come back untouched, the GPU ones included
    (`torch.manual_seed` reseeds every CUDA generator: a stand-in records what it would set)."""
    from data.sampler import SeededItems

    gpu_generator = {"seed": "the training's"}
    monkeypatch.setattr(torch.cuda, "_is_in_bad_fork", lambda: False)
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: gpu_generator.update(seed=seed))
    cpu_state = torch.get_rng_state()
    items = SeededItems(_RandomDraws())
    first, again, other = items[(1234, 3)], items[(1234, 3)], items[(99, 3)]
    assert torch.equal(first, again) and not torch.equal(first, other)  # the item seed decides the draws
    assert torch.equal(torch.get_rng_state(), cpu_state)
    assert gpu_generator == {"seed": "the training's"}


def test_loader_len_and_iteration_cap(tmp_path):
    loader = DatasetLoader(make_opt(tmp_path, max_dataset_size=3, batch_size=2, serial_batches=True), _Numbers())
    assert len(loader) == 3
    batches = [b["i"].tolist() for b in loader]
    assert batches == [[0, 1], [2, 3]]  # stops once 3 samples have been delivered
    full = DatasetLoader(make_opt(tmp_path, batch_size=4, serial_batches=True), _Numbers())
    assert len(full) == 10 and [len(b["i"]) for b in full] == [4, 4, 2]  # last partial batch kept


def test_loader_cap_is_shared_by_the_processes_of_a_torchrun_job(tmp_path):
    """--max_dataset_size counts samples over all processes: with 2 ranks each loads its half of the cap."""
    seen = []
    for rank in (0, 1):
        def shard(dataset, rank=rank):
            return torch.utils.data.DistributedSampler(dataset, num_replicas=2, rank=rank, shuffle=False)

        loader = DatasetLoader(make_opt(tmp_path, max_dataset_size=4, batch_size=1, serial_batches=True), _Numbers(),
                               sampler=shard)
        seen.append([b["i"].item() for b in loader])
    assert seen == [[0, 2], [1, 3]]  # 4 samples in all, each rank its share (DistributedSampler deals i, i+2, ...)


def test_loader_shuffles_unless_serial(tmp_path):
    torch.manual_seed(0)
    shuffled = [b["i"].item() for b in DatasetLoader(make_opt(tmp_path), _Numbers())]
    assert sorted(shuffled) == list(range(10)) and shuffled != list(range(10))


def test_loader_sampler_and_factory(tmp_path):
    opt = make_opt(tmp_path, serial_batches=False)
    reverse = list(range(9, -1, -1))
    reverse_sampler = _Reverse(10)
    loader = DatasetLoader(opt, _Numbers(), sampler=reverse_sampler)
    assert [b["i"].item() for b in loader] == reverse and loader.sampler is reverse_sampler
    factory = DatasetLoader(opt, _Numbers(), sampler=lambda ds: _Reverse(len(ds)))
    assert [b["i"].item() for b in factory] == reverse
    factory.set_epoch(3)
    assert factory.sampler.epoch == 3


class _Reverse(torch.utils.data.Sampler):
    def __init__(self, n):
        self.n, self.epoch = n, None

    def __iter__(self):
        return iter(range(self.n - 1, -1, -1))

    def __len__(self):
        return self.n

    def set_epoch(self, epoch):
        self.epoch = epoch


@pytest.mark.parametrize("mode", ["unaligned", "aligned"])
def test_create_dataset_with_a_worker(mode, unaligned_root, aligned_root):
    root = unaligned_root if mode == "unaligned" else aligned_root
    loader = create_dataset(make_opt(root, dataset_mode=mode, num_threads=1, batch_size=2))
    batches = list(loader)
    assert sum(len(b["A_paths"]) for b in batches) == len(loader.dataset)
    assert batches[0]["A"].shape == (2, 3, 32, 32)


def test_dataset_pickles(unaligned_root):
    """What a spawn worker (Windows, macOS) receives: the dataset object, transforms included."""
    ds = DATASETS.get("unaligned")(make_opt(unaligned_root, serial_batches=True, no_flip=True, preprocess="none"))
    restored = pickle.loads(pickle.dumps(ds))
    assert torch.equal(restored[1]["A"], ds[1]["A"])


# --- errors -----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["unaligned", "aligned", "single"])
def test_missing_dataroot(mode, tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(I2IError, match="--dataroot .*nowhere.* does not exist"):
        DATASETS.get(mode)(make_opt(missing))


def test_empty_trainA(tmp_path):
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainA" / "readme.txt").write_text("x")
    write_images(tmp_path / "trainB", ["b.png"])
    with pytest.raises(I2IError, match=r"trainA' holds no images.*<dataroot>/trainA"):
        DATASETS.get("unaligned")(make_opt(tmp_path))


def test_missing_trainB(tmp_path):
    write_images(tmp_path / "trainA", ["a.png"])
    with pytest.raises(I2IError, match=r"trainB' does not exist"):
        DATASETS.get("unaligned")(make_opt(tmp_path))


def test_unreadable_image_names_file(unaligned_root):
    (unaligned_root / "trainA" / "a0.png").write_bytes(b"not a png at all")
    ds = DATASETS.get("unaligned")(make_opt(unaligned_root, serial_batches=True))
    with pytest.raises(I2IError, match=r"cannot read image .*a0\.png.*corrupt"):
        ds[0]


@pytest.mark.parametrize("mode", ["unaligned", "aligned"])
def test_image_smaller_than_crop(mode, tmp_path):
    if mode == "unaligned":
        write_images(tmp_path / "trainA", ["small.png"], size=(20, 20))
        write_images(tmp_path / "trainB", ["b.png"])
    else:
        write_images(tmp_path / "train", ["small.png"], size=(40, 20))
    ds = DATASETS.get(mode)(make_opt(tmp_path, preprocess="crop", serial_batches=True))
    with pytest.raises(I2IError, match=r"small\.png.*20x20.*--crop_size 32.*--load_size.*--preprocess"):
        ds[0]


def test_load_size_below_crop_size(aligned_root):
    with pytest.raises(I2IError, match="--load_size 20 is smaller than --crop_size 32"):
        DATASETS.get("aligned")(make_opt(aligned_root, load_size=20))
    with pytest.raises(I2IError, match="--load_size 20 is smaller than --crop_size 32"):
        get_transform(make_opt(aligned_root, preprocess="scale_width_and_crop", load_size=20))


def test_unaligned_layout_used_as_aligned(unaligned_root):
    with pytest.raises(I2IError, match=r"unaligned \(CycleGAN\) layout.*--dataset_mode unaligned.*combine_A_and_B"):
        DATASETS.get("aligned")(make_opt(unaligned_root))


def test_aligned_layout_used_as_unaligned(aligned_root):
    with pytest.raises(I2IError, match=r"trainA' does not exist.*aligned \(pix2pix\) layout.*--dataset_mode aligned"):
        DATASETS.get("unaligned")(make_opt(aligned_root))


# --- demo data --------------------------------------------------------------------------------------------------

def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("make", [make_unaligned_demo, make_aligned_demo])
def test_demo_deterministic_and_idempotent(make, tmp_path):
    first, second = _tree(make(tmp_path / "one")), _tree(make(tmp_path / "two"))
    assert first == second and len(first) > 50
    victim = next(p for p in (tmp_path / "one").rglob("*.png"))
    stamp = victim.stat().st_mtime_ns
    make(tmp_path / "one")
    assert victim.stat().st_mtime_ns == stamp  # complete: nothing rewritten
    victim.unlink()
    make(tmp_path / "one")
    assert _tree(tmp_path / "one") == first  # incomplete: redrawn identically


def test_unaligned_demo_layout_and_domains(tmp_path):
    root = make_unaligned_demo(tmp_path)
    counts = {d: len(list((root / d).glob("*.png"))) for d in ("trainA", "trainB", "testA", "testB")}
    assert counts == {"trainA": 48, "trainB": 48, "testA": 8, "testB": 8}
    mean = {d: np.mean([np.asarray(Image.open(p), dtype=float).mean((0, 1)) for p in (root / d).glob("*.png")], 0)
            for d in ("trainA", "trainB")}
    assert Image.open(next((root / "trainA").glob("*.png"))).size == (128, 128)
    red, _, blue = mean["trainA"]
    assert red > blue + 60  # warm
    red, _, blue = mean["trainB"]
    assert blue > red + 30 and mean["trainB"].mean() < mean["trainA"].mean() - 80  # cool and dark


def test_aligned_demo_layout_and_pairs(tmp_path):
    root = make_aligned_demo(tmp_path)
    assert len(list((root / "train").glob("*.png"))) == 48 and len(list((root / "test").glob("*.png"))) == 8
    pair = np.asarray(Image.open(root / "train" / "000.png"))
    assert pair.shape == (128, 256, 3)
    label, photo = pair[:, :128], pair[:, 128:]
    assert len(np.unique(label.reshape(-1, 3), axis=0)) <= 4  # flat class colours + black
    assert len(np.unique(photo.reshape(-1, 3), axis=0)) > 300  # shaded and textured
    shape_pixels = label.any(-1)
    assert 0.05 < shape_pixels.mean() < 0.95  # the same layout: shapes are where the label says
    photo = photo.astype(float)
    assert photo[~shape_pixels].std(0).mean() > 5  # textured background, not flat
    # each class is rendered in its own material: circle -> orange, box -> brown, triangle -> green
    for label_colour, check in (((255, 0, 0), lambda rgb: rgb[0] > rgb[2] + 60),
                                ((0, 255, 0), lambda rgb: rgb[0] > rgb[2] + 20),
                                ((0, 0, 255), lambda rgb: rgb[1] > rgb[0] + 40)):
        where = (label == label_colour).all(-1)
        if where.any():
            assert check(photo[where].mean(0))


@pytest.mark.parametrize("mode", ["unaligned", "aligned"])
def test_demo_feeds_its_dataset_mode(mode, tmp_path):
    root = (make_unaligned_demo if mode == "unaligned" else make_aligned_demo)(tmp_path)
    for phase, n in (("train", 48), ("test", 8)):
        loader = create_dataset(make_opt(root, dataset_mode=mode, phase=phase, load_size=64, crop_size=64))
        assert len(loader) == n
        assert next(iter(loader))["A"].shape == (1, 3, 64, 64)
