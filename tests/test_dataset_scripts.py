"""datasets/combine_A_and_B.py and datasets/download_dataset.py, run through their main(argv)."""

import argparse
import hashlib
import http.server
import importlib.util
import io
import socket
import sys
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _load_script(name: str):
    """Import datasets/<name>.py (a script folder, not a package) under a stable module name."""
    module_name = f"i2i_script_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, ROOT / "datasets" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # so multiprocessing can pickle its functions
        spec.loader.exec_module(module)
    return sys.modules[module_name]


combine = _load_script("combine_A_and_B")
download = _load_script("download_dataset")


def noise(w: int, h: int, seed: int) -> Image.Image:
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


# --- combine_A_and_B ----------------------------------------------------------------------------------------------

@pytest.fixture
def folders(tmp_path):
    A, B = tmp_path / "A", tmp_path / "B"
    for split, names in (("train", ["1.png", "2.png", "3.png", "4.png"]), ("test", ["t.png"])):
        (A / split).mkdir(parents=True)
        (B / split).mkdir(parents=True)
        for k, name in enumerate(names):
            noise(24, 16, k).save(A / split / name)
            if name == "3.png":
                noise(30, 16, k).save(B / split / name)  # size mismatch
            elif name != "4.png":  # 4.png has no partner
                noise(24, 16, 100 + k).save(B / split / name)
    return tmp_path


def _args(root: Path, *extra: str) -> list[str]:
    return ["--fold_A", str(root / "A"), "--fold_B", str(root / "B"), "--fold_AB", str(root / "AB"), *extra]


@pytest.mark.parametrize("extra", [["--no_multiprocessing"], []])
def test_combine_pairs_and_reports_skips(folders, capsys, extra):
    assert combine.main(_args(folders, *extra)) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in (folders / "AB" / "train").iterdir()) == ["1.png", "2.png"]
    assert [p.name for p in (folders / "AB" / "test").iterdir()] == ["t.png"]
    combined = np.asarray(Image.open(folders / "AB" / "train" / "2.png"))
    assert combined.shape == (16, 48, 3)
    assert np.array_equal(combined[:, :24], np.asarray(Image.open(folders / "A" / "train" / "2.png")))
    assert np.array_equal(combined[:, 24:], np.asarray(Image.open(folders / "B" / "train" / "2.png")))
    assert "split 'train': wrote 2" in out
    assert "skipped 1 without a partner in fold_B: 4.png" in out
    assert "skipped 1 whose A and B sizes differ: 3.png (A 24x16, B 30x16)" in out


def test_combine_output_feeds_aligned_mode(folders):
    from data import DATASETS

    assert combine.main(_args(folders, "--no_multiprocessing")) == 0
    opt = argparse.Namespace(
        dataroot=str(folders / "AB"), phase="train", direction="AtoB", input_nc=3, output_nc=3, preprocess="none",
        load_size=16, crop_size=16, no_flip=True, serial_batches=True, max_dataset_size=sys.maxsize, isTrain=True,
    )
    item = DATASETS.get("aligned")(opt)[0]
    expected_A = np.asarray(Image.open(folders / "A" / "train" / "1.png"), dtype=np.float32) / 127.5 - 1
    assert np.allclose(item["A"].permute(1, 2, 0).numpy(), expected_A, atol=1e-5)


def test_combine_use_AB_and_num_imgs(tmp_path, capsys):
    folder = tmp_path / "pairs" / "train"
    folder.mkdir(parents=True)
    for k, stem in enumerate(["a", "b", "c"]):
        noise(8, 8, k).save(folder / f"{stem}_A.png")
        noise(8, 8, 10 + k).save(folder / f"{stem}_B.png")
    argv = ["--fold_A", str(tmp_path / "pairs"), "--fold_B", str(tmp_path / "pairs"), "--fold_AB",
            str(tmp_path / "AB"), "--use_AB", "--num_imgs", "2", "--no_multiprocessing"]
    assert combine.main(argv) == 0
    assert sorted(p.name for p in (tmp_path / "AB" / "train").iterdir()) == ["a.png", "b.png"]


def test_combine_missing_folders(tmp_path, capsys):
    assert combine.main(["--fold_A", str(tmp_path / "noA"), "--fold_B", str(tmp_path), "--fold_AB",
                         str(tmp_path / "AB")]) == 2
    err = capsys.readouterr().err
    assert "--fold_A" in err and str(tmp_path / "noA") in err
    (tmp_path / "A" / "train").mkdir(parents=True)
    noise(8, 8, 0).save(tmp_path / "A" / "train" / "x.png")
    assert combine.main(_args(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "--fold_B" in err and str(tmp_path / "B") in err


def test_combine_missing_split_in_B(tmp_path, capsys):
    (tmp_path / "A" / "val").mkdir(parents=True)
    (tmp_path / "B").mkdir()
    noise(8, 8, 0).save(tmp_path / "A" / "val" / "x.png")
    assert combine.main(_args(tmp_path, "--no_multiprocessing")) == 1  # nothing written
    captured = capsys.readouterr()
    assert "does not exist" in captured.out and "no A|B image was written" in captured.err


# --- download_dataset -------------------------------------------------------------------------------------------

def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for folder in ("trainA", "trainB"):
            png = io.BytesIO()
            noise(4, 4, 0).save(png, format="PNG")
            zf.writestr(f"mini/{folder}/0.png", png.getvalue())
    return buffer.getvalue()


def _tar_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tf:
        payload = b"A|B image bytes"
        info = tarfile.TarInfo("night2day/train/0.jpg")
        info.size = len(payload)
        tf.addfile(info, io.BytesIO(payload))
    return buffer.getvalue()


class _Handler(http.server.BaseHTTPRequestHandler):
    files: dict = {}
    truncated: set = set()

    def do_GET(self):
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        # a truncated download: the server promises len(body) bytes and hangs up after half of them
        self.wfile.write(body[: len(body) // 2] if self.path in self.truncated else body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    _Handler.files = {
        "/cyclegan/datasets/mini.zip": _zip_bytes(),
        "/pix2pix/datasets/night2day.tar.gz": _tar_bytes(),
        "/cyclegan/datasets/horse2zebra.zip": _zip_bytes(),
    }
    _Handler.truncated = {"/cyclegan/datasets/horse2zebra.zip"}
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_download_cyclegan_zip(server, tmp_path, capsys):
    assert download.main(["mini", "--root", str(tmp_path), "--base_url", server]) == 0
    assert (tmp_path / "mini" / "trainA" / "0.png").is_file() and (tmp_path / "mini" / "trainB" / "0.png").is_file()
    assert not list(tmp_path.glob("mini.zip*"))  # archive removed, no .part left
    assert f"{server}/cyclegan/datasets/mini.zip" in capsys.readouterr().out
    assert download.main(["mini", "--root", str(tmp_path), "--base_url", "http://127.0.0.1:9"]) == 0  # no request
    assert "already exists" in capsys.readouterr().out


def test_download_pix2pix_tar(server, tmp_path):
    assert download.main(["night2day", "--root", str(tmp_path), "--base_url", server, "--keep_archive"]) == 0
    assert (tmp_path / "night2day" / "train" / "0.jpg").read_bytes() == b"A|B image bytes"
    assert (tmp_path / "night2day.tar.gz").read_bytes() == _Handler.files["/pix2pix/datasets/night2day.tar.gz"]


def test_download_truncated(server, tmp_path, capsys):
    assert download.main(["horse2zebra", "--root", str(tmp_path), "--base_url", server]) == 1
    err = capsys.readouterr().err
    assert "incomplete" in err and "horse2zebra.zip" in err
    assert not list(tmp_path.glob("horse2zebra*"))  # neither the archive nor its .part survives


def test_download_checksum(server, tmp_path, capsys, monkeypatch):
    good = hashlib.sha256(_Handler.files["/cyclegan/datasets/mini.zip"]).hexdigest()
    monkeypatch.setitem(download.CHECKSUMS, "cyclegan/mini", "0" * 64)
    assert download.main(["mini", "--root", str(tmp_path), "--base_url", server]) == 1
    assert "SHA-256" in capsys.readouterr().err and not list(tmp_path.glob("mini*"))
    monkeypatch.setitem(download.CHECKSUMS, "cyclegan/mini", good)
    assert download.main(["mini", "--root", str(tmp_path), "--base_url", server]) == 0


def test_download_404_and_unreachable(server, tmp_path, capsys):
    assert download.main(["apple2orange", "--root", str(tmp_path), "--base_url", server]) == 1
    assert f"404 Not Found for {server}/cyclegan/datasets/apple2orange.zip" in capsys.readouterr().err
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert download.main(["edges2shoes", "--root", str(tmp_path), "--base_url", f"http://127.0.0.1:{port}"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"http://127.0.0.1:{port}/pix2pix/datasets/edges2shoes.tar.gz" in err
    assert "could not download" in err


def test_download_names(tmp_path, capsys):
    assert download.main(["hors2zebra", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert "Valid names:" in err and "edges2shoes" in err and "Did you mean 'horse2zebra'?" in err
    assert download.main(["cityscapes", "--root", str(tmp_path)]) == 1
    assert "licence" in capsys.readouterr().err
    assert download.main(["facades", "--root", str(tmp_path)]) == 1
    assert "--kind cyclegan" in capsys.readouterr().err
    assert download.resolve("facades", "pix2pix") == "pix2pix" and download.resolve("horse2zebra", None) == "cyclegan"
    assert download.dataset_url("facades", "pix2pix", "http://h/") == "http://h/pix2pix/datasets/facades.tar.gz"
    assert download.dataset_url("maps", "cyclegan") == "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets/maps.zip"
    assert not list(tmp_path.iterdir())


def test_extract_refuses_unsafe_zip(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("../escape.txt", "x")
    with pytest.raises(download.I2IError, match="unsafe path"):
        download.extract(archive, tmp_path / "root")
    assert not (tmp_path / "escape.txt").exists()
