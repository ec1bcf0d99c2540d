"""The options that choose what a generator's last layer gives (networks/residual.py): a change to its input,
added or as a per-pixel affine colour transform, and how that transform's coefficients are filtered."""

from __future__ import annotations

import argparse

from util.option_types import number


def add_generator_output_options(parser: argparse.ArgumentParser) -> None:
    add = parser.add_argument
    add("--residual_output", action="store_true", help="the generator predicts a change to its input (added to "
        "atanh(input) before its last tanh) and starts as the identity; saved with the run, so test.py rebuilds it")
    add("--affine_output", action="store_true", help="the generator predicts a per-pixel affine colour transform "
        "of its input (a matrix and an offset applied to atanh(input) before its last tanh) and starts as the "
        "identity: the input's edges and shapes pass through; saved with the run, so test.py rebuilds it")
    add("--affine_smooth", type=number(int, at_least=1), default=1, help="with --affine_output: low-pass its "
        "per-pixel coefficients with an N x N binomial filter (odd N; 1: none), so the transform varies smoothly "
        "in space and upsampling artefacts do not reach the output; saved with the run")
    add("--affine_edge_sigma", type=number(float, at_least=0), default=0.0, help="with --affine_smooth: the "
        "filter's weights also fall off with the input's colour difference, exp(-d^2 / 2 sigma^2) ([-1, 1] "
        "units; 0: a plain binomial filter), so the coefficients may change across the input's edges; saved "
        "with the run")
