"""i2i's training step against the reference's, on this machine, now: alternating processes, same networks.

    python benchmarks/reference_speed.py                          # train_speed.py's four configs and inference
    python benchmarks/reference_speed.py --configs pix2pix_256 --rounds 3
    python benchmarks/reference_speed.py --quick                  # a smoke run at tiny widths and sizes
    python benchmarks/reference_speed.py --configs cycle_gan_256 --reference_checkout ../pytorch-CycleGAN-and-pix2pix

With `--reference_checkout PATH` the reference's side is the reference's own code, imported from that checkout
in its child process (benchmarks/reference_checkout.py): its TrainOptions parsed from the same flags, its
`create_model(opt)`, `setup`, `set_input` and `optimize_parameters` (inference: its `networks.define_G`
under torch.no_grad()). Without it, the reference's training step is re-stated from its documented behaviour
(shared/docs/reference-behaviour.md, sections 2.2, 2.3, 3.7 and 3.9): the same networks with plain PyTorch
layers, the same forward/backward order (CycleGAN: four generator passes, then two identity passes inside
G's loss; pix2pix: D first, then G; inference: the generator under torch.no_grad()), `requires_grad`
toggling, its image pool, target tensors made per call, `torch.optim.Adam` with PyTorch's defaults, and
PyTorch's default runtime (no allocator tuning). What it
leaves out is the reference's data loading (4 workers competing for the cores) and its Visdom/HTML calls,
so it is a lower bound of the reference's cost per iteration.

Each round runs the reference then i2i (the next round the other way round), each in a fresh process that
measures its own convolution peak, so drift of the machine shows up as drift of the peak. Printed: seconds per
iteration of each, the speed-up per round (reference time / i2i time of the same round), and that speed-up
scaled by the ratio of the two processes' convolution rates (what it would be had the machine kept one speed).
Environment variables reach both children, so `ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2` emulates an
AVX2-only CPU for both sides; each record names the capability PyTorch ran with.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

PLAIN_RUNTIME = "I2I_BENCH_PLAIN_RUNTIME"  # tells benchmarks/common.py to leave PyTorch's runtime as it is
if __name__ == "__main__" and "--child" in sys.argv and sys.argv[sys.argv.index("--child") + 1:][:1] == ["reference"]:
    os.environ[PLAIN_RUNTIME] = "1"  # before benchmarks/common.py is imported

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import torch  # noqa: E402
import infer_speed  # noqa: E402
import torch.nn as nn  # noqa: E402
import train_speed  # noqa: E402

# Inference: the reference's test.py runs the generator under torch.no_grad(), one image at a time.
INFERENCE = {"infer_resnet_9blocks_256": "resnet_9blocks_256", "infer_unet_256": "unet_256"}
CONFIGS = [*train_speed.CONFIGS, *INFERENCE]


class ReferencePool:
    """The reference's image history (section 3.9): fill up, then swap a random stored image half the time."""

    def __init__(self, size: int) -> None:
        self.size, self.images = size, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images:
            image = torch.unsqueeze(image.data, 0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                index = random.randint(0, self.size - 1)
                out.append(self.images[index].clone())
                self.images[index] = image
            else:
                out.append(image)
        return torch.cat(out, 0)


def gan_loss(gan_mode: str):
    """The reference's GANLoss for lsgan/vanilla: a target tensor expanded to the prediction's shape per call."""
    criterion = nn.MSELoss() if gan_mode == "lsgan" else nn.BCEWithLogitsLoss()

    def loss(prediction: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.tensor(1.0 if real else 0.0).expand_as(prediction)
        return criterion(prediction, target)

    return loss


def plain_layers(net: nn.Module) -> nn.Module:
    """The reference's layers: i2i's small-map convolutions back to plain nn.Conv2d / nn.ConvTranspose2d."""
    from networks.small_map_conv import SmallMapConv2d, SmallMapConvTranspose2d

    for module in net.modules():
        if type(module) is SmallMapConv2d:
            module.__class__ = nn.Conv2d
        elif type(module) is SmallMapConvTranspose2d:
            module.__class__ = nn.ConvTranspose2d
    return net


def freeze(nets: list[nn.Module], requires_grad: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad = requires_grad


def reference_cycle_gan(opt: argparse.Namespace, nets: dict[str, nn.Module]):
    G_A, G_B, D_A, D_B = (plain_layers(nets[k]) for k in ("G_A", "G_B", "D_A", "D_B"))
    adam = dict(lr=opt.lr, betas=(opt.beta1, 0.999))
    opt_G = torch.optim.Adam(itertools.chain(G_A.parameters(), G_B.parameters()), **adam)
    opt_D = torch.optim.Adam(itertools.chain(D_A.parameters(), D_B.parameters()), **adam)
    pool_A, pool_B = ReferencePool(opt.pool_size), ReferencePool(opt.pool_size)
    gan, l1 = gan_loss(opt.gan_mode), nn.L1Loss()
    lam_A, lam_B, lam_idt = opt.lambda_A, opt.lambda_B, opt.lambda_identity

    def step(real_A: torch.Tensor, real_B: torch.Tensor) -> None:
        fake_B = G_A(real_A)
        rec_A = G_B(fake_B)
        fake_A = G_B(real_B)
        rec_B = G_A(fake_A)
        freeze([D_A, D_B], False)
        opt_G.zero_grad()
        loss_idt_A = l1(G_A(real_B), real_B) * lam_B * lam_idt
        loss_idt_B = l1(G_B(real_A), real_A) * lam_A * lam_idt
        loss_G = (gan(D_A(fake_B), True) + gan(D_B(fake_A), True) + l1(rec_A, real_A) * lam_A
                  + l1(rec_B, real_B) * lam_B + loss_idt_A + loss_idt_B)
        loss_G.backward()
        opt_G.step()
        freeze([D_A, D_B], True)
        opt_D.zero_grad()
        for D, real, fake in ((D_A, real_B, pool_B.query(fake_B)), (D_B, real_A, pool_A.query(fake_A))):
            loss_D = (gan(D(real), True) + gan(D(fake.detach()), False)) * 0.5
            loss_D.backward()
        opt_D.step()

    return step


def reference_pix2pix(opt: argparse.Namespace, nets: dict[str, nn.Module]):
    G, D = plain_layers(nets["G"]), plain_layers(nets["D"])
    adam = dict(lr=opt.lr, betas=(opt.beta1, 0.999))
    opt_G, opt_D = torch.optim.Adam(G.parameters(), **adam), torch.optim.Adam(D.parameters(), **adam)
    gan, l1 = gan_loss(opt.gan_mode), nn.L1Loss()

    def step(real_A: torch.Tensor, real_B: torch.Tensor) -> None:
        fake_B = G(real_A)
        freeze([D], True)
        opt_D.zero_grad()
        fake_AB = torch.cat((real_A, fake_B), 1)
        loss_D = (gan(D(fake_AB.detach()), False) + gan(D(torch.cat((real_A, real_B), 1)), True)) * 0.5
        loss_D.backward()
        opt_D.step()
        freeze([D], False)
        opt_G.zero_grad()
        loss_G = gan(D(fake_AB), True) + l1(fake_B, real_B) * opt.lambda_L1
        loss_G.backward()
        opt_G.step()

    return step


def inference_steps(side: str, name: str, batch: int, args: argparse.Namespace, tmp: str):
    """One batch through the generator: the reference's forward under no_grad, or i2i's `model.test()`."""
    from util.runtime import unwrap

    model, opt = infer_speed.build_model(INFERENCE[name], "fp32", batch, torch.device("cpu"), args.quick, tmp)
    data = {"A": torch.rand(batch, 3, opt.crop_size, opt.crop_size) * 2 - 1,
            "A_paths": [f"{i}.png" for i in range(batch)]}
    if side == "reference":
        net, image = plain_layers(unwrap(model.netG)), data["A"]

        def step() -> None:
            with torch.no_grad():
                net(image)
    else:
        def step() -> None:
            model.set_input(data)
            model.test()
    return step


def own_code_step(name: str, batch: int, args: argparse.Namespace, tmp: str):
    """The reference's own step for config `name`, imported from --reference_checkout."""
    import reference_checkout

    reference_checkout.use_checkout(args.reference_checkout, common.ROOT)
    if name in INFERENCE:
        netG, norm = ("unet_256", "batch") if "unet" in name else ("resnet_9blocks", "instance")
        side = 64 if args.quick and netG.startswith("resnet") else 256  # as infer_speed.build_model
        image = torch.rand(batch, 3, side, side) * 2 - 1
        return reference_checkout.inference_step(netG, norm, 8 if args.quick else 64, image), False
    flags, _ = train_speed.CONFIGS[name]
    if args.quick:
        size = str(train_speed.QUICK_SIZE[name])
        flags = [*flags, *train_speed.QUICK, "--load_size", size, "--crop_size", size]
    argv = ["--dataroot", tmp, "--checkpoints_dir", tmp, "--display_id", "0", "--batch_size", str(batch),
            "--gpu_ids", "-1", *flags]
    size = int(flags[len(flags) - 1 - flags[::-1].index("--crop_size") + 1])  # the last one given wins
    data = train_speed.synthetic_batch(argparse.Namespace(crop_size=size, input_nc=3, output_nc=3), batch)
    return reference_checkout.training_step(argv, data), True


def record_of(side: str, name: str, batch: int, times: list[float], peak, args: argparse.Namespace) -> dict:
    code = "i2i"
    if side == "reference":
        code = "re-stated"
        if args.reference_checkout:
            import reference_checkout

            code = f"own code at {reference_checkout.checkout_commit(args.reference_checkout)[:12]}"
    return {"side": side, "config": name, "batch": batch, **common.summary(times),
            "conv_peak_gflops": peak.median(), "code": code, "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def child(argv: list[str], args: argparse.Namespace) -> None:
    side, name, batch = argv[0], argv[1], int(argv[2])
    device = torch.device("cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    if side == "reference" and args.reference_checkout:
        with tempfile.TemporaryDirectory() as tmp:
            step, backward = own_code_step(name, batch, args, tmp)
            peak = common.ConvPeak(device, backward=backward, amp=False, channels_last=False)
            step()
            times = common.time_interleaved(step, peak, device, args.warmup, args.repeats, args.iters)
        print(json.dumps(record_of(side, name, batch, times, peak, args)))
        return
    if name in INFERENCE:
        with tempfile.TemporaryDirectory() as tmp:
            step = inference_steps(side, name, batch, args, tmp)
            peak = common.ConvPeak(device, backward=False, amp=False, channels_last=False)
            step()
            times = common.time_interleaved(step, peak, device, args.warmup, args.repeats, args.iters)
        print(json.dumps(record_of(side, name, batch, times, peak, args)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        model, opt = train_speed.build_model(name, "fp32", batch, device, args.quick, tmp)
        data = train_speed.synthetic_batch(opt, batch)
        if side == "reference":
            nets = {n: getattr(model, "net" + n) for n in model.model_names}
            reference = reference_cycle_gan(opt, nets) if opt.model == "cycle_gan" else reference_pix2pix(opt, nets)
            real_A, real_B = data["A"], data["B"]

            def step() -> None:
                reference(real_A, real_B)
        else:
            def step() -> None:
                model.set_input(data)
                model.optimize_parameters()
                model.current_loss_tensors()

        peak = common.ConvPeak(device, backward=True, amp=False, channels_last=False)
        step()
        times = common.time_interleaved(step, peak, device, args.warmup, args.repeats, args.iters)
    print(json.dumps(record_of(side, name, batch, times, peak, args)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    common.common_arguments(parser)
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated subset of: " + ", ".join(CONFIGS))
    parser.add_argument("--rounds", type=int, default=2, help="reference/i2i pairs per config (order alternates)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads of both (default: PyTorch's choice)")
    parser.add_argument("--reference_checkout", default=None, help="a checkout of pytorch-CycleGAN-and-pix2pix: "
                        "time the reference's own code instead of its re-statement")
    parser.add_argument("--start_with", default="reference", choices=["reference", "i2i"],
                        help="which side runs first in the first round (the order alternates after it)")
    args = parser.parse_args()
    if args.child:
        child(args.child, args)
        return
    common.prepare_run(args)
    rows = []
    flags = common.child_flags(args, *([f"--reference_checkout={args.reference_checkout}"]
                                       if args.reference_checkout else []))
    for name in args.configs.split(","):
        batch = str(train_speed.CONFIGS[name][1] if name in train_speed.CONFIGS else 1)
        pairs = []
        for round_ in range(args.rounds):
            order = ("reference", "i2i") if (round_ + (args.start_with == "i2i")) % 2 == 0 else ("i2i", "reference")
            got = {r["side"]: r for r in common.run_children(Path(__file__).resolve(),
                                                             [[side, name, batch] for side in order],
                                                             flags)}
            if len(got) == 2:
                pairs.append(got)
                print(f"done: {name} round {round_ + 1}: reference {got['reference']['median_s']:.3f} s/it, "
                      f"i2i {got['i2i']['median_s']:.3f} s/it", file=sys.stderr)
        if pairs:
            rows.append(summarize(name, int(batch), pairs))
    common.report("i2i against the reference's step, fp32, batch as in train_speed.py", rows, [
        ("config", "config", "s"), ("batch", "batch", "d"), ("reference s/it", "reference_s", ".3f"),
        ("i2i s/it", "i2i_s", ".3f"), ("speed-up", "speedup", ".2f"), ("per round", "rounds", "s"),
        ("conv peak (ref / i2i)", "peaks", "s"), ("at equal conv rate", "speedup_equal_rate", ".2f"),
        ("per round", "rounds_equal_rate", "s"), ("target", "target", ".2f")],
        args.json or "benchmarks/results/reference_speed.json")


def summarize(name: str, batch: int, pairs: list[dict]) -> dict:
    ratios = [p["reference"]["median_s"] / p["i2i"]["median_s"] for p in pairs]
    # the same ratio had both sides met the same convolution rate (the machine's speed moves between processes)
    at_equal_rate = [ratio * p["reference"]["conv_peak_gflops"] / p["i2i"]["conv_peak_gflops"]
                     for ratio, p in zip(ratios, pairs)]
    peaks = [f"{p['reference']['conv_peak_gflops']:.0f}/{p['i2i']['conv_peak_gflops']:.0f}" for p in pairs]
    return {"config": name, "batch": batch,
            "reference_s": statistics.median(p["reference"]["median_s"] for p in pairs),
            "i2i_s": statistics.median(p["i2i"]["median_s"] for p in pairs), "speedup": statistics.median(ratios),
            "rounds": " ".join(f"{r:.2f}" for r in ratios), "peaks": " ".join(peaks),
            "speedup_equal_rate": statistics.median(at_equal_rate),
            "rounds_equal_rate": " ".join(f"{r:.2f}" for r in at_equal_rate),
            "target": target_of(name), "pairs": pairs}


def target_of(name: str) -> float | None:
    """Issue 6's target speed-up for a config, where it sets one."""
    if name in INFERENCE:
        return infer_speed.REFERENCE.get(INFERENCE[name], {}).get("target")
    return train_speed.REFERENCE[name]["target"]


if __name__ == "__main__":
    main()
