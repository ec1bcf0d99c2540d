"""Train an image-to-image translation model.

    python train.py --dataroot ./datasets/maps --name maps_cyclegan --model cycle_gan
    python train.py --dataroot ./datasets/facades --name facades_pix2pix --model pix2pix --direction BtoA
    python train.py --model cycle_gan        # no --dataroot: trains on i2i's generated demo data

Options: `python train.py --help` (they depend on --model and --dataset_mode).
"""

from __future__ import annotations

import util.cpu_setup  # noqa: F401, I001  (first, before torch: glibc reads its allocator settings once)
import time
from pathlib import Path

from data import create_dataset
from data.demo import make_demo_data
from engine.evaluator import TrainingEvaluator
from models import create_model
from options.train_options import TrainOptions
from util.cli import run_main
from engine.distributed import init_distributed, shard_samples
from engine.progress import TrainProgress
from util.run_folder import claim_run_folder
from engine.seed import seed_everything
from engine.training_state import resume_or_start
from engine.visualizer import Visualizer


def crossed(total: int, step: int, freq: int) -> bool:
    """Did the last `step` samples pass a multiple of `freq`? (So frequencies fire at any batch size.)"""
    return total // freq > (total - step) // freq


def main(argv: list[str] | None = None) -> None:
    options = TrainOptions()
    opt = options.parse(argv)
    dist = init_distributed(opt)  # under torchrun: this process's device, rank and data shard; else a no-op
    # One live run per run folder, and a fresh run never overwrites a trained one (rank 0 owns the folder).
    run_lock = claim_run_folder(Path(opt.checkpoints_dir) / opt.name, resuming=opt.continue_train,
                                overwrite=opt.overwrite_run) if dist.rank == 0 else None
    if options.demo:
        make_demo_data(opt.dataset_mode)
    options.save(opt)  # prints the options (and notes) and writes train_opt.txt/.json
    seed_everything(opt.seed)
    dataset = create_dataset(opt, sampler=dist.sampler(opt))
    dataset_size = len(dataset)
    print(f"The number of training images = {dataset_size}")
    model = create_model(opt)
    model.data_dependent_initialize(next(iter(dataset)))  # parts sized from the data (CUT's F head), once
    model.setup(opt)  # schedulers; weights too with --continue_train
    evaluator = TrainingEvaluator(opt)  # --eval_freq: a metric on the test split, best_net_*.pth
    # Last of the set-up: it restores the random generators, which nothing may draw from before the first step.
    state = resume_or_start(opt, model, dataset)  # --continue_train: the full training state, where saved
    print(state.describe())
    total_iters = state.total_iters  # samples seen, as the reference counts them
    last_epoch = opt.n_epochs + opt.n_epochs_decay
    # this process's batches: under torchrun, of its shard; progress is shown by rank 0 alone
    progress = TrainProgress(state.epoch, last_epoch, batches_per_epoch=-(-dist.shard_size(dataset) // opt.batch_size))
    visualizer = Visualizer(opt, progress)

    for epoch in progress.epochs():
        epoch_start = iter_data_time = time.time()
        epoch_iter, epoch_losses = state.begin_epoch(epoch)  # resuming mid-epoch skips the samples already seen
        visualizer.reset()
        for data in progress.batches(dataset, done=shard_samples(epoch_iter, dist.world_size) // opt.batch_size):
            iter_start = time.time()
            batch_size = data["A"].size(0) * dist.world_size  # samples this step over all processes
            total_iters += batch_size
            epoch_iter += batch_size
            model.set_input(data)
            model.optimize_parameters()
            epoch_losses.add(state.watch(model.current_loss_tensors(), total_iters))  # NaN/Inf noted, no sync

            # Maintenance, each when its frequency (in samples) is passed.
            if crossed(total_iters, batch_size, opt.display_freq):
                model.compute_visuals()
                save_result = crossed(total_iters, batch_size, opt.update_html_freq)
                visualizer.display_current_results(model.get_current_visuals(), epoch, save_result)
            if crossed(total_iters, batch_size, opt.print_freq):
                losses = model.get_current_losses()
                state.check()  # stops on a NaN/Inf loss
                t_comp = (time.time() - iter_start) / batch_size
                visualizer.print_current_losses(epoch, epoch_iter, losses, t_comp, iter_start - iter_data_time,
                                                total_iters=total_iters, dataset_size=dataset_size)
                visualizer.plot_current_losses(epoch, epoch_iter / dataset_size, losses)
            if crossed(total_iters, batch_size, opt.save_latest_freq):
                progress.write(f"saving the latest model (epoch {epoch}, total_iters {total_iters})")
                tag = f"iter_{total_iters}" if opt.save_by_iter else "latest"
                state.save_latest(epoch, epoch_iter, total_iters, tag)  # weights, then the training state
            iter_data_time = time.time()

        # End of epoch: the learning rate for the next epoch, then checkpoints (resuming at the next epoch).
        scores = evaluator.end_of_epoch(model, epoch, last_epoch)  # {} unless an evaluation is due
        if scores:
            visualizer.print_current_losses(epoch, epoch_iter, scores, 0.0, 0.0, total_iters=total_iters,
                                            dataset_size=dataset_size)
        model.update_learning_rate(evaluator.lr_metric(epoch_losses.generator_objective()))
        if epoch % opt.save_epoch_freq == 0 or epoch == last_epoch:
            progress.write(f"saving the model at the end of epoch {epoch}, iters {total_iters}")
            state.save_epoch(epoch, total_iters)
        progress.write(f"End of epoch {epoch} / {last_epoch} \t Time Taken: {time.time() - epoch_start:.0f} sec")
    visualizer.close()
    dist.close()
    if run_lock is not None:
        run_lock.release()


if __name__ == "__main__":
    run_main(main)
