"""The house rules of docs/architecture.md, checked: dependencies point down, files stay small, and the parsed
options stay as parsed through a training step, a test step, an export and a resume."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT, load_script, tiny_args, unaligned_dataset
from util.option_types import Options, ReadOnlyOptionsError

#: a package may import packages of a lower layer, and its own; packages on one layer know nothing of each other
LAYERS = {"util": 0, "data": 1, "networks": 1, "models": 2, "metrics": 2, "inference": 3, "engine": 4, "options": 5}
DRIVERS = {"train", "test", "export", "evaluate", "translate", "quickstart"}
MAX_LINES = 300


def library_files() -> list[Path]:
    return sorted(p for package in LAYERS for p in (ROOT / package).glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, at the top or inside functions, as absolute dotted names."""
    package = path.parent.name
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package if node.level else ""
            name = ".".join(part for part in (base, node.module or "") if part)
            found.add(name)
            found |= {f"{name}.{alias.name}" for alias in node.names}
    return found


def test_dependencies_point_down():
    upward = []
    for path in library_files():
        package = path.parent.name
        for module in imported_modules(path):
            top = module.split(".")[0]
            if top in DRIVERS:
                upward.append(f"{path.relative_to(ROOT)} imports the driver {module}")
            elif top in LAYERS and top != package and LAYERS[top] >= LAYERS[package]:
                upward.append(f"{path.relative_to(ROOT)} ({package}, layer {LAYERS[package]}) imports {module} "
                              f"(layer {LAYERS[top]})")
    assert not upward, "\n".join(upward)


def test_the_import_check_sees_an_upward_import(tmp_path):
    """The check itself: a models file that imports the engine, inside a function, is caught."""
    bad = tmp_path / "models" / "bad_model.py"
    bad.parent.mkdir()
    bad.write_text("def f():\n    from engine.progress import write\n    from . import schedulers\n")
    assert {"engine.progress", "engine.progress.write", "models.schedulers", "models"} <= imported_modules(bad)


def test_no_library_file_is_long():
    long = {str(p.relative_to(ROOT)): n for p in library_files() + sorted(ROOT.glob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"files over {MAX_LINES} lines: {long}"


def test_architecture_doc_lists_every_library_file():
    doc = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    missing = [str(p.relative_to(ROOT)) for p in library_files()
               if p.name != "__init__.py" and f"`{p.name}`" not in doc]
    assert not missing, f"docs/architecture.md does not describe: {missing}"


def test_parsed_options_are_read_only(tmp_path):
    from options.train_options import TrainOptions

    opt = TrainOptions().parse(["--dataroot", str(tmp_path), "--gpu_ids", "-1"])
    assert isinstance(opt, Options)
    with pytest.raises(ReadOnlyOptionsError, match="opt.lr"):
        opt.lr = 1.0
    with pytest.raises(ReadOnlyOptionsError):
        del opt.name


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_train_test_export_and_resume_leave_the_options_as_parsed(tmp_path):
    """Every driver runs on the read-only namespace: a write anywhere would raise ReadOnlyOptionsError."""
    pytest.importorskip("onnx")
    root = unaligned_dataset(tmp_path / "data", count=2, size=32)
    common = tiny_args(root, tmp_path) + ["--name", "frozen", "--netG", "resnet_6blocks",
                                          "--pool_size", "2", "--seed", "0", "--save_latest_freq", "1"]
    load_script("train").main([*common, "--n_epochs", "1", "--n_epochs_decay", "0"])
    load_script("train").main([*common, "--n_epochs", "1", "--n_epochs_decay", "1", "--continue_train"])
    test_args = tiny_args(root, tmp_path, train=False) + ["--name", "frozen", "--model", "cycle_gan",
                                                          "--results_dir", str(tmp_path / "results")]
    load_script("test").main(test_args)
    written = load_script("export").main(test_args[:-2])
    assert {path.suffix for path in written.values()} == {".onnx"}
    assert (tmp_path / "results" / "frozen" / "test_latest" / "index.html").is_file()
