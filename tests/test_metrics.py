"""Metrics: formulas against independent computations, the library FID Inception's loading, weights handling."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import linalg

from metrics.fid import fid_from_features, kid_from_features
from metrics.paired import psnr, ssim
from metrics.suite import MetricSuite
from metrics.weights import INCEPTION_FID, download_weights, resolve_weights
from tests.helpers import random_fid_inception_weights
from util.errors import I2IError


def _random_spd(rng: np.random.Generator, d: int) -> np.ndarray:
    a = rng.normal(size=(d, d))
    return a @ a.T + d * np.eye(d)


def _frechet(mu1, s1, mu2, s2) -> float:
    """The Frechet distance written out independently: Tr((S1 S2)^1/2) from the symmetric S1^1/2 S2 S1^1/2."""
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T
    tr_covmean = np.sum(np.sqrt(np.clip(np.linalg.eigvalsh(root1 @ s2 @ root1), 0, None)))
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr_covmean)


def test_fid_of_two_samples_is_the_frechet_distance_of_their_mean_and_covariance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6)) @ rng.normal(size=(6, 6))
    y = rng.normal(loc=0.3, size=(150, 6)) @ rng.normal(size=(6, 6))
    expected = _frechet(x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    assert fid_from_features(x, y) == pytest.approx(expected, rel=1e-8)
    assert fid_from_features(x, x) == pytest.approx(0.0, abs=1e-8)


def test_fid_of_diagonal_gaussians_has_the_closed_form():
    # samples whose mean and (unbiased) covariance are exactly mu and diag(v): +-sqrt(v (n-1)/n) around mu
    def sample(mu, v, n=10):
        offsets = np.zeros((n, len(mu)))
        for d in range(len(v)):
            offsets[2 * d, d], offsets[2 * d + 1, d] = 1, -1
        return mu + offsets * np.sqrt(np.asarray(v) * (n - 1) / 2)

    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    v1, v2 = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 1.0])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(v1) - np.sqrt(v2)) ** 2)
    assert fid_from_features(sample(mu1, v1), sample(mu2, v2)) == pytest.approx(expected, rel=1e-9)


def test_fid_through_a_fixed_feature_extractor_equals_scipy_on_its_features():
    """The suite's whole path (batches -> features -> stats -> FID) with a small fixed linear extractor."""
    torch.manual_seed(0)
    proj = torch.randn(3, 4)

    def extractor(x: torch.Tensor) -> torch.Tensor:  # mean colour (of uint8 images) through a fixed projection
        assert x.dtype == torch.uint8
        return x.double().mean(dim=(2, 3)) @ proj.double()

    a = torch.randint(0, 256, (40, 3, 8, 8), dtype=torch.uint8)
    b = torch.randint(0, 200, (40, 3, 8, 8), dtype=torch.uint8)
    suite = MetricSuite(["fid", "kid"], feature_extractor=extractor)
    batches = [[(a[i], b[i]) for i in range(j, j + 10)] for j in range(0, 40, 10)]
    scores = suite.compare_pairs(batches)
    fa = a.double().mean(dim=(2, 3)).numpy() @ proj.double().numpy()
    fb = b.double().mean(dim=(2, 3)).numpy() @ proj.double().numpy()
    mu1, mu2 = fa.mean(0), fb.mean(0)
    s1, s2 = np.cov(fa, rowvar=False), np.cov(fb, rowvar=False)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert scores["fid"] == pytest.approx(expected, rel=1e-5)
    assert scores["kid"] == pytest.approx(kid_from_features(fa, fb)[0], rel=1e-9)
    assert scores["count"] == 40


def test_kid_is_the_unbiased_polynomial_mmd():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 5)), rng.normal(loc=0.5, size=(12, 5))

    def k(u, v):
        return (u @ v / 5 + 1) ** 3

    m = 12
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    mean, std = kid_from_features(x, y, subsets=3, subset_size=m)  # every subset is all samples, reordered
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-9)
    assert std == pytest.approx(0.0, abs=1e-9)
    assert kid_from_features(x, x, subsets=1, subset_size=m)[0] < mean


def test_kid_leaves_the_global_rng_alone_and_repeats():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    torch.manual_seed(5)
    expected_next = torch.rand(3)
    torch.manual_seed(5)
    first = kid_from_features(x, y, subsets=5, subset_size=10)
    assert torch.equal(torch.rand(3), expected_next)  # a training run's random stream is not advanced
    assert kid_from_features(x, y, subsets=5, subset_size=10) == first


def test_fid_needs_two_samples():
    with pytest.raises(ValueError):
        fid_from_features(np.zeros((1, 3)), np.zeros((4, 3)))


def _image_pair(seed: int = 0, shape=(48, 40, 3)):
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, size=shape, dtype=np.uint8)
    noise = rng.integers(-30, 31, size=shape)
    b = np.clip(a.astype(int) + noise, 0, 255).astype(np.uint8)
    return a, b


def _nchw(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x).permute(2, 0, 1)[None].double()


def test_psnr_and_ssim_match_scikit_image():
    metrics = pytest.importorskip("skimage.metrics")
    a, b = _image_pair()
    ours_psnr = float(psnr(_nchw(a), _nchw(b))[0])
    ours_ssim = float(ssim(_nchw(a), _nchw(b))[0])
    assert ours_psnr == pytest.approx(metrics.peak_signal_noise_ratio(a, b, data_range=255), rel=1e-9)
    expected = metrics.structural_similarity(a, b, data_range=255, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                             use_sample_covariance=False)
    assert ours_ssim == pytest.approx(expected, rel=1e-6)
    gray_a, gray_b = a[..., 0], b[..., 0]
    expected_gray = metrics.structural_similarity(gray_a, gray_b, data_range=255, gaussian_weights=True, sigma=1.5,
                                                  use_sample_covariance=False)
    assert float(ssim(_nchw(gray_a[..., None]), _nchw(gray_b[..., None]))[0]) == pytest.approx(expected_gray, rel=1e-6)


def test_fid_inception_loads_the_published_layout_strictly_and_refuses_other_files(tmp_path):
    from metrics.inception import FEATURE_DIM, load_fid_inception

    weights = random_fid_inception_weights(tmp_path / "inception.pth")
    net = load_fid_inception(weights)
    images = torch.randint(0, 256, (2, 3, 37, 53), dtype=torch.uint8)
    with torch.no_grad():
        features = net(images)
    assert features.shape == (2, FEATURE_DIM) and features.std() > 0
    state = torch.load(weights)
    assert torch.equal(net.state_dict()["Mixed_7c.branch_pool.conv.weight"], state["Mixed_7c.branch_pool.conv.weight"])
    del state["Mixed_6b.branch7x7_2.conv.weight"]  # one missing weight is an error, not a random layer
    torch.save(state, tmp_path / "missing.pth")
    with pytest.raises(I2IError, match="not the FID Inception-v3 weights file"):
        load_fid_inception(tmp_path / "missing.pth")
    torch.save({"w": torch.zeros(1), "code": Path("a pickled object")}, tmp_path / "pickled.pth")
    with pytest.raises(I2IError, match="refused to load"):
        load_fid_inception(tmp_path / "pickled.pth")


def test_missing_weights_name_the_url_and_the_place(tmp_path, monkeypatch):
    monkeypatch.setenv("I2I_CACHE", str(tmp_path / "cache"))
    with pytest.raises(I2IError) as info:
        resolve_weights(INCEPTION_FID, option="--inception_weights")
    message = str(info.value)
    assert INCEPTION_FID.url in message and str(tmp_path / "cache" / INCEPTION_FID.filename) in message
    with pytest.raises(I2IError, match="no such file"):
        resolve_weights(INCEPTION_FID, tmp_path / "nope.pth", option="--inception_weights")
    cached = tmp_path / "cache" / INCEPTION_FID.filename
    cached.parent.mkdir()
    cached.write_bytes(b"x")
    assert resolve_weights(INCEPTION_FID, option="--inception_weights") == cached


@pytest.fixture
def http_file(tmp_path):
    """A local HTTP server on 127.0.0.1 serving tmp_path/served/ (stops by itself at the end of the test)."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_checks_the_sha256_prefix(http_file, tmp_path):
    served, base = http_file
    payload = b"fake weights"
    (served / "w.pth").write_bytes(payload)
    good = dataclasses.replace(INCEPTION_FID, url=f"{base}/w.pth",
                               sha256_prefix=hashlib.sha256(payload).hexdigest()[:8])
    target = tmp_path / "cache" / "w.pth"
    assert download_weights(good, target, timeout=10).read_bytes() == payload
    bad = dataclasses.replace(good, sha256_prefix="00000000")
    other = tmp_path / "cache" / "w2.pth"
    with pytest.raises(I2IError, match="refusing"):
        download_weights(bad, other, timeout=10)
    assert not other.exists() and list(other.parent.glob(".*tmp")) == []
    missing = dataclasses.replace(good, url=f"{base}/absent.pth")
    with pytest.raises(I2IError, match="could not download"):
        download_weights(missing, tmp_path / "cache" / "w3.pth", timeout=10)


def test_lpips_loads_a_torchvision_alexnet_file(tmp_path):
    pytest.importorskip("lpips")
    from torchvision.models import alexnet

    from metrics.lpips import load_lpips

    path = tmp_path / "alexnet.pth"
    torch.save(alexnet(weights=None).state_dict(), path)
    net = load_lpips(path)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        same, other = net(x, x).flatten(), net(x, x.flip(0)).flatten()
    assert torch.all(same.abs() < 1e-6) and torch.all(other > 0)
    loaded = net.net.state_dict()
    assert torch.equal(loaded["slice5.10.weight"], torch.load(path)["features.10.weight"])
    torch.save({"not": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(I2IError, match="not torchvision's AlexNet"):
        load_lpips(tmp_path / "bad.pth")
    # a file with every key but a weight of the wrong shape: a strict load refuses it
    state = torch.load(path)
    state["features.8.weight"] = state["features.8.weight"][:, :128]
    torch.save(state, tmp_path / "wrong_shape.pth")
    with pytest.raises(I2IError, match="size mismatch"):
        load_lpips(tmp_path / "wrong_shape.pth")
