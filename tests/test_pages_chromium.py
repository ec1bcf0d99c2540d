"""The training page and the test results pages, opened in headless Chromium: every image loads, the page
renders (a screenshot is kept), names with `<script>` are shown as text, and a 10,000-image test run gives
pages that stay small.

Chromium is looked for at /usr/bin/chromium (or `chromium` / `chromium-browser` on PATH); without it these
tests skip (`.ci/run` installs it). Screenshots go to $I2I_TEST_ARTIFACTS/i2i-page-screenshots (default: the
system temp folder); each test prints where.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import unquote

import numpy as np
import pytest
import torch
from PIL import Image

from engine import visualizer as vz
from util.html import ResultPages, save_test_images

EVIL = '<script>document.title="pwned"<script>'  # unterminated: unescaped, it would swallow the page
CHECK = """<script>
window.addEventListener("load", () => {  // fires once every (eager) image has loaded or failed
  const imgs = [...document.images];
  const broken = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute("src"));
  const names = [...document.querySelectorAll("td.name, h3")].map(e => e.textContent);
  document.body.setAttribute("data-i2i-check", JSON.stringify(
    {count: imgs.length, broken, names, title: document.title, scripts: document.scripts.length}));
});
</script>"""


def _chromium() -> str | None:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


@pytest.fixture(scope="module")
def chromium():
    path = _chromium()
    if path is None:
        pytest.skip("headless Chromium not found (/usr/bin/chromium); `apt-get install chromium` or run .ci/run")
    return path


@pytest.fixture(scope="module")
def artifacts() -> Path:
    folder = Path(os.environ.get("I2I_TEST_ARTIFACTS") or tempfile.gettempdir()) / "i2i-page-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\npage screenshots: {folder}")
    return folder


def _run(chromium: str, profiles: Path, *args: str) -> subprocess.CompletedProcess:
    """Run headless Chromium with a fresh profile under `profiles` (a profile still locked by the previous,
    exiting browser would make this one hand its work over to it and print nothing)."""
    profiles.mkdir(parents=True, exist_ok=True)
    profile = tempfile.mkdtemp(dir=profiles)
    command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
               "--hide-scrollbars", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def check_page(chromium: str, page: Path, profile: Path) -> dict:
    """Load a copy of `page` (same folder, so the relative links hold; images made eager, so that the load
    event waits for all of them) with a script that records which images failed; returns what it recorded."""
    probe = page.with_name(f".check_{page.name}")
    text = page.read_text(encoding="utf-8")
    assert text.count("</body>") == 1
    probe.write_text(text.replace(' loading="lazy"', "").replace("</body>", CHECK + "</body>"), encoding="utf-8")
    try:
        result = _run(chromium, profile, "--virtual-time-budget=10000", "--dump-dom", probe.as_uri())
    finally:
        probe.unlink()
    match = re.search(r'data-i2i-check="([^"]*)"', result.stdout)
    noise = ("dbus", "Fontconfig")
    stderr = "\n".join(line for line in result.stderr.splitlines() if not any(n in line for n in noise))
    assert match, (f"the check script did not run in {page}: exit {result.returncode}, "
                   f"stdout {result.stdout[-300:]!r}, stderr {stderr[-1500:]}")
    return json.loads(match.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
                      .replace("&amp;", "&"))


def screenshot(chromium: str, page: Path, out: Path, profile: Path, size: str = "1000,800") -> np.ndarray:
    """Render `page` to the PNG `out`; returns its pixels."""
    out.unlink(missing_ok=True)
    result = _run(chromium, profile, f"--window-size={size}", f"--screenshot={out}", page.as_uri())
    assert out.is_file(), result.stderr[-2000:]
    with Image.open(out) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def assert_not_blank(pixels: np.ndarray) -> None:
    assert pixels.std() > 10, "the screenshot is blank"
    assert (pixels.reshape(-1, 3) != 255).any(axis=1).mean() > 0.02, "the screenshot is nearly all white"


def _visuals(seed: int, batch: int = 1, size: int = 32) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    ramp = torch.linspace(-1, 1, size).view(1, 1, 1, size).expand(batch, 3, size, size)
    return {"real_A": ramp + 0.0, "fake_B": (torch.rand(batch, 3, size, size, generator=g) * 2 - 1),
            "rec_A": -ramp + 0.0}


def _training_page(tmp_path: Path, name: str, epochs: int) -> Path:
    opt = SimpleNamespace(name=name, checkpoints_dir=str(tmp_path / "checkpoints"), display_id=0, display_ncols=4,
                          display_winsize=128, no_html=False, use_wandb=False, use_tensorboard=False,
                          isTrain=True)
    viz = vz.Visualizer(opt)
    for epoch in range(1, epochs + 1):
        for step in (1, 2):
            losses = {"G_A": 1.0 / (epoch + step), "D_A": 0.25 + 0.01 * step, "cycle_A": 2.0 / epoch}
            viz.print_current_losses(epoch, 2 * step, losses, 0.1, 0.0, total_iters=4 * epoch, dataset_size=4)
            viz.plot_current_losses(epoch, step / 2, losses)
        viz.display_current_results(_visuals(epoch), epoch, save_result=True)
    viz.close()
    return Path(opt.checkpoints_dir) / name / "web"


def test_training_page_loads_every_image_and_escapes_the_name(tmp_path, chromium, artifacts):
    name = f"exp{EVIL}"
    web = _training_page(tmp_path, name, epochs=vz.EPOCHS_PER_PAGE + 2)
    index = web / "index.html"
    found = check_page(chromium, index, tmp_path / "profile")
    # The newest EPOCHS_PER_PAGE epochs x 3 visuals, plus the loss curves.
    assert found["count"] == vz.EPOCHS_PER_PAGE * 3 + 1 and found["broken"] == [], found
    assert found["title"] == f"Experiment name = {name}" and found["scripts"] == 1  # only the probe script ran
    assert found["names"][0] == f"epoch [{vz.EPOCHS_PER_PAGE + 2}]"
    older = check_page(chromium, web / f"epochs_001-{vz.EPOCHS_PER_PAGE:03d}.html", tmp_path / "profile")
    assert older["count"] == vz.EPOCHS_PER_PAGE * 3 and older["broken"] == [], older
    pixels = screenshot(chromium, index, artifacts / "training_page.png", tmp_path / "profile")
    assert_not_blank(pixels)
    print(f"training page screenshot: {artifacts / 'training_page.png'}")


def test_results_page_loads_every_image_and_shows_script_names_as_text(tmp_path, chromium, artifacts):
    page = ResultPages(tmp_path / "results" / "exp" / "test_latest", "Experiment = exp, Phase = test, Epoch = latest",
                       width=96)
    sources = [f"/data/testA/{stem}.png" for stem in ("horse_001", EVIL, "zebra #3?", "photo 4")]
    save_test_images(page, _visuals(1, batch=4), sources, width=96)
    index, = page.save()
    found = check_page(chromium, index, tmp_path / "profile")
    assert found["count"] == 12 and found["broken"] == [], found
    assert found["names"] == ["Experiment = exp, Phase = test, Epoch = latest", "horse_001", EVIL, "zebra #3?",
                              "photo 4"]
    assert found["title"].startswith("Experiment = exp") and found["scripts"] == 1
    assert (page.get_image_dir() / "fake_B" / f"{EVIL}.png").is_file()
    pixels = screenshot(chromium, index, artifacts / "results_page.png", tmp_path / "profile", size="800,700")
    assert_not_blank(pixels)
    print(f"results page screenshot: {artifacts / 'results_page.png'}")


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.srcs.append(attrs["src"])
        elif tag == "a":
            self.hrefs.append(attrs["href"])


def _many_results(folder: Path, count: int, batch: int = 100) -> tuple[list[Path], float]:
    """`count` inputs of 8-px images written through save_test_images; returns the pages and the seconds
    page.save() took."""
    page = ResultPages(folder, "Experiment = big, Phase = test, Epoch = latest", per_page=100, width=256)
    g = torch.Generator().manual_seed(0)
    for start in range(0, count, batch):
        visuals = {"real_A": torch.rand(batch, 3, 8, 8, generator=g) * 2 - 1,
                   "fake_B": torch.rand(batch, 3, 8, 8, generator=g) * 2 - 1}
        save_test_images(page, visuals, [f"/data/testA/img_{i:05d}.jpg" for i in range(start, start + batch)])
    started = time.perf_counter()
    pages = page.save()
    return pages, time.perf_counter() - started


def _check_paging(tmp_path: Path, chromium: str, count: int) -> None:
    folder = tmp_path / "results"
    pages, seconds = _many_results(folder, count)
    assert len(pages) == count // 100 and pages[0].name == "index.html" and pages[1].name == "page_002.html"
    sizes = [p.stat().st_size for p in pages]
    print(f"\n{count} inputs: {len(pages)} pages of {min(sizes) / 1024:.1f}-{max(sizes) / 1024:.1f} KiB, "
          f"written in {seconds:.1f} s")
    assert max(sizes) < 64 * 1024  # each page stays small, whatever the number of pages
    seen = set()
    for path in pages:  # every image and every page link resolves on disk
        links = _Links()
        links.feed(path.read_text(encoding="utf-8"))
        assert len(links.srcs) == 200
        seen.update(links.srcs)
        for target in links.srcs + links.hrefs:
            assert (folder / unquote(target)).is_file(), f"{path.name} links to missing {target}"
    assert len(seen) == 2 * count
    for path in (pages[0], pages[-1]):
        started = time.perf_counter()
        found = check_page(chromium, path, tmp_path / "profile")
        print(f"{path.name}: {found['count']} images loaded in Chromium in {time.perf_counter() - started:.1f} s")
        assert found["count"] == 200 and found["broken"] == []


def test_thousand_results_are_paged(tmp_path, chromium):
    _check_paging(tmp_path, chromium, 1000)


@pytest.mark.slow
def test_ten_thousand_results_are_paged(tmp_path, chromium):
    _check_paging(tmp_path, chromium, 10_000)
