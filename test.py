"""Translate images with a trained model and write a results page.

    python test.py --dataroot ./datasets/maps --name maps_cyclegan --model cycle_gan
    python test.py --dataroot ./datasets/horse2zebra/testA --name horse2zebra_pretrained --model test --no_dropout
    python test.py --model cycle_gan        # no --dataroot: the demo run's test images

Results: results/NAME/{phase}_{epoch}/index.html (then page_002.html, ... every RESULTS_PER_PAGE inputs),
images/<name>_<visual>.png as the reference names them, and images/<visual>/<name>.png for metric tools.
"""

from __future__ import annotations

import util.cpu_setup  # noqa: F401, I001  (first, before torch: glibc reads its allocator settings once)
from pathlib import Path

from data import create_dataset
from data.demo import ShapeKeeping, make_demo_data
from models import create_model
from options.test_options import TestOptions
from util.cli import run_main
from inference.translator import prepare_for_inference
from engine.progress import progress_bar
from util.background import BackgroundWorker
from util.html import ResultPages, save_test_images
from util.images import tensors2ims

RESULTS_PER_PAGE = 100  # inputs per results page: a 10,000-image run gives 100 quick pages, not one huge one


def main(argv: list[str] | None = None) -> None:
    options = TestOptions()
    opt = options.parse(argv)
    if options.demo:
        make_demo_data(opt.dataset_mode)
    options.save(opt)  # prints the options (and notes) and writes test_opt.txt/.json
    dataset = create_dataset(opt)
    model = create_model(opt)
    prepare_for_inference(model, opt)  # loads the --epoch checkpoints (or ONNX files); any size; --tile
    if opt.eval:
        model.eval()
    run_dir = f"{opt.phase}_{opt.epoch}" + (f"_iter{opt.load_iter}" if opt.load_iter > 0 else "")
    webpage = ResultPages(Path(opt.results_dir) / opt.name / run_dir,
                          f"Experiment = {opt.name}, Phase = {opt.phase}, Epoch = {opt.epoch}",
                          per_page=RESULTS_PER_PAGE, width=opt.display_winsize)
    # The demo's shapes on flat backgrounds show whether a translation keeps the content (data/demo.py).
    shapes = ShapeKeeping("A" if opt.direction == "AtoB" else "B") if options.demo else None

    done = 0
    # DataLoader workers (--num_threads) load the next batches, one thread writes the PNGs: both overlap the network.
    with progress_bar(min(len(dataset), opt.num_test), "test") as bar, BackgroundWorker() as writer:
        for data in dataset:
            if done >= opt.num_test:
                break
            model.set_input(data)
            model.test()
            take = min(len(model.get_image_paths()), opt.num_test - done)
            paths = model.get_image_paths()[:take]
            visuals = {name: images[:take] for name, images in model.get_current_visuals().items()}
            writer.submit(save_test_images, webpage, visuals, paths, aspect_ratio=opt.aspect_ratio,
                          width=opt.display_winsize)
            if shapes is not None:
                shapes.add({name: tensors2ims(images) for name, images in visuals.items()})
            done += take
            bar.update(take)
    if shapes is not None and shapes.summary():
        webpage.add_note(shapes.summary())
        print(shapes.summary())
    webpage.save()
    print(f"results: {Path(webpage.web_dir) / 'index.html'} ({done} images)")
    if done < len(dataset):
        print(f"--num_test {opt.num_test} stopped after {done} of {len(dataset)} images; "
              f"pass --num_test {len(dataset)} to translate them all.")


if __name__ == "__main__":
    run_main(main)
