"""util/images.py (tensor -> image, saving) and util/html.py (the results page)."""

import sys
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from util.html import HTML, ResultPages, page_links, page_name  # noqa: E402
from util.images import save_image, tensor2im, tensors2ims  # noqa: E402


class _Tags(HTMLParser):
    """Collects (tag, attrs) pairs and text, to check the page's structure rather than its spelling."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        if data.strip():
            self.text.append(data.strip())


def _parse(path: Path) -> _Tags:
    parser = _Tags()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


# ---- tensor2im / tensors2ims ------------------------------------------------------------------------


def test_tensor2im_maps_range_to_uint8_hwc_and_clamps():
    t = torch.tensor([-1.0, 0.0, 1.0, -3.0, 3.0, 0.5]).view(1, 1, 2, 3).repeat(2, 3, 1, 1)
    t[1] = -1.0
    im = tensor2im(t)
    assert im.dtype == np.uint8 and im.shape == (2, 3, 3)
    # -1 -> 0, 0 -> 127 (the reference truncates), 1 -> 255, out-of-range clamped, 0.5 -> 191
    assert im[..., 0].tolist() == [[0, 127, 255], [0, 255, 191]]
    assert (tensor2im(t, index=1) == 0).all()


def test_tensor2im_keeps_grayscale_single_channel():
    im = tensor2im(torch.zeros(2, 1, 4, 5))
    assert im.shape == (4, 5, 1)


def test_tensors2ims_matches_tensor2im_for_every_image():
    t = torch.rand(3, 3, 4, 6) * 2 - 1
    ims = tensors2ims(t)
    assert len(ims) == 3
    for i, im in enumerate(ims):
        np.testing.assert_array_equal(im, tensor2im(t, i))


# ---- save_image -------------------------------------------------------------------------------------


def test_save_image_round_trips_rgb_and_grayscale(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (10, 20, 3), dtype=np.uint8)
    gray = rgb[:, :, :1].copy()
    save_image(rgb, tmp_path / "rgb.png")
    save_image(gray, tmp_path / "gray.png")
    with Image.open(tmp_path / "rgb.png") as img:
        assert img.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(img), rgb)
    with Image.open(tmp_path / "gray.png") as img:
        assert img.mode == "L"
        np.testing.assert_array_equal(np.asarray(img), gray[:, :, 0])


@pytest.mark.parametrize("ratio, size", [(2.0, (40, 10)), (0.5, (20, 20)), (1.0, (20, 10))])
def test_save_image_aspect_ratio_widens_above_one_and_heightens_below(tmp_path, ratio, size):
    image = np.zeros((10, 20, 3), dtype=np.uint8)  # H=10, W=20
    save_image(image, tmp_path / "x.png", aspect_ratio=ratio)
    with Image.open(tmp_path / "x.png") as img:
        assert img.size == size  # PIL: (width, height)


def test_save_image_leaves_no_temp_files_and_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = tmp_path / "x.png"
    save_image(np.zeros((4, 4, 3), dtype=np.uint8), target)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    old = target.read_bytes()

    def broken_save(self, fp, *args, **kwargs):
        fp.write(b"half a png")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_image(np.full((4, 4, 3), 255, dtype=np.uint8), target)
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]
    assert target.read_bytes() == old


# ---- HTML ---------------------------------------------------------------------------------------


def test_html_page_links_images_relatively_with_captions(tmp_path):
    page = HTML(tmp_path / "web", "Experiment = demo", refresh=1)
    assert page.get_image_dir() == tmp_path / "web" / "images"
    assert page.get_image_dir().is_dir()
    page.add_header("epoch [2]")
    page.add_images(["epoch002_real_A.png", "epoch002_fake_B.png"], ["real_A", "fake_B"],
                    ["epoch002_real_A.png", "epoch002_fake_B.png"], width=64)
    path = page.save()
    assert path == tmp_path / "web" / "index.html"
    assert sorted(p.name for p in (tmp_path / "web").iterdir()) == ["images", "index.html"]  # no temp files

    parsed = _parse(path)
    srcs = [attrs["src"] for tag, attrs in parsed.tags if tag == "img"]
    hrefs = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]
    assert srcs == hrefs == ["images/epoch002_real_A.png", "images/epoch002_fake_B.png"]
    assert all("width:64px" in attrs["style"] for tag, attrs in parsed.tags if tag == "img")
    assert {"http-equiv": "refresh", "content": "1"} in [attrs for tag, attrs in parsed.tags if tag == "meta"]
    assert parsed.text == ["Experiment = demo", "epoch [2]", "real_A", "fake_B"]


def test_html_escapes_names_and_has_no_refresh_by_default(tmp_path):
    name = "<script>alert(1)</script>.png"
    page = HTML(tmp_path, "t")
    page.add_header("<b>x</b>")
    page.add_images([name], [name], [name])
    text = page.save().read_text(encoding="utf-8")
    assert "<script>" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.png" in text
    parsed = _parse(tmp_path / "index.html")
    assert [a["src"] for t, a in parsed.tags if t == "img"] == ["images/%3Cscript%3Ealert%281%29%3C/script%3E.png"]
    assert not any(a.get("http-equiv") for t, a in parsed.tags if t == "meta")


# ---- ResultPages --------------------------------------------------------------------------------------


def test_result_pages_split_rows_and_link_each_other(tmp_path):
    pages = ResultPages(tmp_path, "Experiment = t", per_page=2, width=48)
    for i in range(5):
        pages.add_row(f"in{i}", [("real_A", f"in{i}_real_A.png"), ("fake_B", f"in{i}_fake_B.png")])
    paths = pages.save()
    assert [p.name for p in paths] == ["index.html", "page_002.html", "page_003.html"]
    first, last = _parse(paths[0]), _parse(paths[2])
    assert [a["src"] for t, a in first.tags if t == "img"] == [
        "images/in0_real_A.png", "images/in0_fake_B.png", "images/in1_real_A.png", "images/in1_fake_B.png"]
    assert "inputs 5\u20135 of 5" in last.text and "in4" in last.text
    assert [a["href"] for t, a in last.tags if t == "a" and not a["href"].startswith("images/")][:3] == [
        "index.html", "page_002.html", "index.html"]  # first, previous, then the page numbers
    assert "th" in [t for t, _ in first.tags] and first.text[first.text.index("input") + 1 : first.text.index(
        "input") + 3] == ["real_A", "fake_B"]  # column labels
    # A shorter rerun into the same folder leaves no stale pages behind.
    again = ResultPages(tmp_path, "Experiment = t", per_page=2)
    again.add_row("x", [("real_A", "x_real_A.png")])
    assert [p.name for p in again.save()] == ["index.html"]
    assert sorted(p.name for p in tmp_path.glob("*.html")) == ["index.html"]


def test_page_links_stay_the_same_size_however_many_pages():
    assert page_links(1, 1) == []
    small, huge = page_links(50, 100), page_links(5000, 10000)
    assert len(small) == len(huge) == 11  # first, previous, 7 neighbours, next, last
    assert ("5000", None) in huge and ("next \u203a", "page_5001.html") in huge and huge[-1][1] == "page_10000.html"
    assert page_links(1, 3)[0] == ("\u00ab first", None) and page_name(1) == "index.html"
