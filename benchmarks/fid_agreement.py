"""evaluate.py's FID and KID against torch-fidelity's own `fidelity` command, with the same local weights file.

    python benchmarks/fid_agreement.py                                   # random weights, 64 images a side
    python benchmarks/fid_agreement.py --weights ~/.cache/i2i/pt_inception-2015-12-05-6726825d.pth --count 200

Two folders: generated images (a freshly initialised resnet_9blocks generator translating the demo's warm
scenes) and the demo's real cool scenes. Both tools read the same PNGs with the same weights; the script prints
both numbers and exits 1 if FID differs by more than --tolerance (1e-3). Without --weights it writes a file of
seeded random weights in the published layout (the published file cannot be fetched everywhere); torch-fidelity
is told not to cache anything and never downloads, as it gets the weights path.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402


def generated_folders(work: Path, count: int, size: int, seed: int) -> tuple[Path, Path]:
    """(fake, real): `count` generator outputs from the demo's testA, and the demo's testB."""
    from data.demo import make_unaligned_demo
    from networks import build_generator

    demo = make_unaligned_demo(work / "demo", n_train=1, n_test=count, size=size)
    torch.manual_seed(seed)
    generator = build_generator("resnet_9blocks", 3, 3, 16, norm="instance").eval()
    fake = work / "fake"
    fake.mkdir()
    for path in sorted((demo / "testA").glob("*.png")):
        x = torch.from_numpy(np.array(Image.open(path).convert("RGB"))).permute(2, 0, 1)[None].float() / 127.5 - 1
        with torch.no_grad():
            y = generator(x)[0]
        pixels = ((y.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(pixels).save(fake / path.name)
    return fake, demo / "testB"


def fidelity_command() -> list[str]:
    script = Path(sys.executable).parent / "fidelity"
    if script.exists():
        return [str(script)]
    found = shutil.which("fidelity")
    if found is None:
        raise SystemExit("torch-fidelity's `fidelity` command is not installed: pip install torch-fidelity")
    return [found]


def compare(fake: Path, real: Path, weights: Path, count: int, work: Path) -> dict:
    i2i = subprocess.run([sys.executable, str(ROOT / "evaluate.py"), "--fake", str(fake), "--real", str(real),
                          "--metrics", "fid,kid", "--inception_weights", str(weights), "--json",
                          str(work / "i2i.json")], capture_output=True, text=True)
    if i2i.returncode:
        raise SystemExit(f"evaluate.py failed:\n{i2i.stderr}")
    row = json.loads((work / "i2i.json").read_text())["rows"][0]
    # KID with every subset the whole set: no random draw, so the two tools must agree there too
    theirs = subprocess.run([*fidelity_command(), "--input1", str(fake), "--input2", str(real), "--fid", "--kid",
                             "--kid-subset-size", str(count), "--kid-subsets", "3", "--cpu", "--no-cache",
                             "--json", "--silent", "--feature-extractor-weights-path", str(weights)],
                            capture_output=True, text=True)
    if theirs.returncode:
        raise SystemExit(f"fidelity failed:\n{theirs.stderr}")
    reference = json.loads(theirs.stdout)
    return {"count": count, "weights": str(weights),
            "i2i_fid": row["fid"], "fidelity_fid": reference["frechet_inception_distance"],
            "i2i_kid": row["kid"], "fidelity_kid": reference["kernel_inception_distance_mean"]}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=64, help="images a side")
    parser.add_argument("--size", type=int, default=64, help="image side in pixels")
    parser.add_argument("--weights", type=Path, default=None, help="FID Inception weights (default: seeded random)")
    parser.add_argument("--tolerance", type=float, default=1e-3, help="largest FID difference accepted")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        weights = args.weights
        if weights is None:
            from tests.helpers import random_fid_inception_weights

            weights = random_fid_inception_weights(work / "random_inception.pth", seed=0)
        fake, real = generated_folders(work, args.count, args.size, seed=0)
        result = compare(fake, real, weights, args.count, work)
    result["fid_difference"] = abs(result["i2i_fid"] - result["fidelity_fid"])
    result["kid_difference"] = abs(result["i2i_kid"] - result["fidelity_kid"])
    print(f"{args.count} generated vs {args.count} real images, weights {'given' if args.weights else 'random'}")
    print(f"FID  evaluate.py {result['i2i_fid']:.6f}  fidelity {result['fidelity_fid']:.6f}  "
          f"difference {result['fid_difference']:.2e}")
    print(f"KID  evaluate.py {result['i2i_kid']:.8f}  fidelity {result['fidelity_kid']:.8f}  "
          f"difference {result['kid_difference']:.2e}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    if result["fid_difference"] > args.tolerance:
        raise SystemExit(f"FID differs by {result['fid_difference']:.2e} > {args.tolerance}")
    return result


if __name__ == "__main__":
    main()
