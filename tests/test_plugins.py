"""Plugin discovery through every channel, as a user meets it on the command line.

Channels: `--plugin path/to/file.py`, `--plugin module.name`, an installed distribution's `i2i.plugins` entry
point (the example package, pip-installed into a temporary folder outside the repository), and the reference's
file convention (models/foo_model.py in a copy of the repository). Plus: a name clash and a broken plugin each
stop with a message naming the plugin, and a model written against the reference's API trains and tests
unchanged. The drivers run in this process (`main(argv)`, as `python train.py ...` runs it) under the `isolated`
fixture, which puts the registries and imported plugin modules back afterwards; only the runs that need another
copy of the repository or pip are subprocesses.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from options.plugin_options import component_registries
from tests.helpers import ROOT, aligned_dataset, load_script, unaligned_dataset, write_images
from tests.test_model_contract import test_training_step_visuals_and_checkpoints as check_model_contract
from tests.test_model_contract import universal_dataset
from util import plugins
from util.errors import I2IError

EXAMPLE = ROOT / "examples" / "plugin_package"

# -- a reference-style model and dataset, written in the reference's API (no registry, no decorator) ----------

REFERENCE_STYLE_MODEL = '''
import torch
from .base_model import BaseModel
from . import networks


class RefstyleModel(BaseModel):
    """A conditional GAN written against the reference's API."""

    @staticmethod
    def modify_commandline_options(parser, is_train=True):
        parser.set_defaults(norm='batch', netG='resnet_6blocks', dataset_mode='refpair')
        if is_train:
            parser.set_defaults(pool_size=0, gan_mode='vanilla')
            parser.add_argument('--lambda_rec', type=float, default=10.0, help='weight of the L1 term')
        return parser

    def __init__(self, opt):
        BaseModel.__init__(self, opt)
        self.loss_names = ['G_GAN', 'G_rec', 'D_real', 'D_fake']
        self.visual_names = ['real_A', 'fake_B', 'real_B']
        self.model_names = ['G', 'D'] if self.isTrain else ['G']
        self.netG = networks.define_G(opt.input_nc, opt.output_nc, opt.ngf, opt.netG, opt.norm,
                                      not opt.no_dropout, opt.init_type, opt.init_gain, self.gpu_ids)
        if self.isTrain:
            self.netD = networks.define_D(opt.input_nc + opt.output_nc, opt.ndf, opt.netD, opt.n_layers_D,
                                          opt.norm, opt.init_type, opt.init_gain, self.gpu_ids)
            self.criterionGAN = networks.GANLoss(opt.gan_mode).to(self.device)
            self.criterionRec = torch.nn.L1Loss()
            self.optimizer_G = torch.optim.Adam(self.netG.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
            self.optimizer_D = torch.optim.Adam(self.netD.parameters(), lr=opt.lr, betas=(opt.beta1, 0.999))
            self.optimizers.append(self.optimizer_G)
            self.optimizers.append(self.optimizer_D)

    def set_input(self, input):
        AtoB = self.opt.direction == 'AtoB'
        self.real_A = input['A' if AtoB else 'B'].to(self.device)
        self.real_B = input['B' if AtoB else 'A'].to(self.device)
        self.image_paths = input['A_paths' if AtoB else 'B_paths']

    def forward(self):
        self.fake_B = self.netG(self.real_A)

    def backward_D(self):
        fake_AB = torch.cat((self.real_A, self.fake_B), 1)
        self.loss_D_fake = self.criterionGAN(self.netD(fake_AB.detach()), False)
        real_AB = torch.cat((self.real_A, self.real_B), 1)
        self.loss_D_real = self.criterionGAN(self.netD(real_AB), True)
        self.loss_D = (self.loss_D_fake + self.loss_D_real) * 0.5
        self.loss_D.backward()

    def backward_G(self):
        fake_AB = torch.cat((self.real_A, self.fake_B), 1)
        self.loss_G_GAN = self.criterionGAN(self.netD(fake_AB), True)
        self.loss_G_rec = self.criterionRec(self.fake_B, self.real_B) * self.opt.lambda_rec
        self.loss_G = self.loss_G_GAN + self.loss_G_rec
        self.loss_G.backward()

    def optimize_parameters(self):
        self.forward()
        self.set_requires_grad(self.netD, True)
        self.optimizer_D.zero_grad()
        self.backward_D()
        self.optimizer_D.step()
        self.set_requires_grad(self.netD, False)
        self.optimizer_G.zero_grad()
        self.backward_G()
        self.optimizer_G.step()
'''

REFERENCE_STYLE_DATASET = '''
import os
from PIL import Image
from data.base_dataset import BaseDataset, get_params, get_transform
from data.image_folder import make_dataset


class RefpairDataset(BaseDataset):
    """A|B side-by-side pairs, written against the reference's dataset API."""

    @staticmethod
    def modify_commandline_options(parser, is_train):
        return parser

    def __init__(self, opt):
        BaseDataset.__init__(self, opt)
        self.dir_AB = os.path.join(opt.dataroot, opt.phase)
        self.AB_paths = sorted(make_dataset(self.dir_AB, opt.max_dataset_size))

    def __getitem__(self, index):
        AB_path = self.AB_paths[index]
        AB = Image.open(AB_path).convert('RGB')
        w, h = AB.size
        w2 = int(w / 2)
        A = AB.crop((0, 0, w2, h))
        B = AB.crop((w2, 0, w, h))
        transform_params = get_params(self.opt, A.size)
        A_transform = get_transform(self.opt, transform_params, grayscale=(self.opt.input_nc == 1),
                                    method=Image.BICUBIC)
        B_transform = get_transform(self.opt, transform_params, grayscale=(self.opt.output_nc == 1))
        return {'A': A_transform(A), 'B': B_transform(B), 'A_paths': AB_path, 'B_paths': AB_path}

    def __len__(self):
        return len(self.AB_paths)
'''

# -- helpers --------------------------------------------------------------------------------------------------

PLUGIN_MODULE_PREFIXES = ("models.", "data.", "networks.", "i2i_plugin_", "i2i_example_plugin", "my_plugins",
                          "bad_i2i_plugin")


@pytest.fixture
def isolated():
    """Whatever a test's plugins register or import is undone afterwards, so other tests see the built-ins only."""
    registries = list(component_registries().values())
    # Registry has no public reset: tests may look inside.
    saved = [(r, dict(r._entries), dict(r._descriptions)) for r in registries]
    sources, loaded, modules = dict(plugins._labels), dict(plugins._loaded), set(sys.modules)
    yield
    for registry, entries, descriptions in saved:
        registry._entries.clear()
        registry._entries.update(entries)
        registry._descriptions.clear()
        registry._descriptions.update(descriptions)
    plugins._labels.clear()
    plugins._labels.update(sources)
    plugins._loaded.clear()
    plugins._loaded.update(loaded)
    for name in set(sys.modules) - modules:
        if name.startswith(PLUGIN_MODULE_PREFIXES):
            del sys.modules[name]


@pytest.fixture
def autoload(monkeypatch):
    """Installed plugins (entry points) load, as they do outside the test suite."""
    monkeypatch.delenv(plugins.DISABLE_ENV, raising=False)


def tiny(root: Path, tmp: Path, name: str = "run") -> list[str]:
    return ["--dataroot", str(root), "--checkpoints_dir", str(tmp / "checkpoints"), "--name", name, "--gpu_ids",
            "-1", "--ngf", "8", "--ndf", "8", "--load_size", "32", "--crop_size", "32", "--num_threads", "0"]


def train(args: list[str]) -> None:
    load_script("train").main(args)


def test(args: list[str]) -> None:
    load_script("test").main(args)


test.__test__ = False  # a helper, not a pytest test


def train_one_epoch(root: Path, tmp: Path, extra: list[str]) -> None:
    train(tiny(root, tmp) + ["--n_epochs", "1", "--n_epochs_decay", "0", "--display_id", "0", *extra])


def listing(capsys, argv: list[str], script: str = "train") -> str:
    """What `python <script>.py --list ...` prints (it exits 0)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        load_script(script).main(argv + ["--list"])
    assert exit_info.value.code == 0
    return capsys.readouterr().out


def listing_line(text: str, name: str) -> str:
    lines = [line for line in text.splitlines() if line.strip().startswith(name + " ")]
    assert lines, f"{name} not listed:\n{text}"
    return lines[0]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def error_of(run, args: list[str]) -> str:
    with pytest.raises(I2IError) as exc_info:
        run(args)
    return str(exc_info.value)


# -- reading the command line ---------------------------------------------------------------------------------


def test_prescan_reads_every_plugin_flag_in_order():
    from util.cli import flag_values

    argv = ["--model", "x", "--plugin", "a.b", "--plugin=c/d.py", "--no_plugin_autoload"]
    assert flag_values(argv, "--plugin") == ["a.b", "c/d.py"]
    assert flag_values(["--model", "x"], "--plugin") == []
    with pytest.raises(I2IError, match="--plugin needs a value"):
        flag_values(["--plugin", "--model", "x"], "--plugin")


@pytest.mark.parametrize("value, disabled", [("1", True), ("true", True), ("0", False), ("", False)])
def test_autoload_environment_variable(monkeypatch, value, disabled):
    monkeypatch.setenv(plugins.DISABLE_ENV, value)
    assert plugins.autoload_disabled() is disabled
    assert plugins.autoload_disabled(True) is True


# -- --plugin FILE and --plugin MODULE -------------------------------------------------------------------------

PLUGIN_FILE = '''
"""A plugin file: a generator and an LR policy."""
from torch import nn
from models.schedulers import LR_POLICIES, linear_policy
from networks import GENERATORS


@GENERATORS.register("plug_gen")
def plug_gen(input_nc, output_nc, ngf=64, *, norm_layer, use_dropout=False):
    """Plugin generator: one 3x3 convolution and a tanh."""
    return nn.Sequential(nn.Conv2d(input_nc, output_nc, 3, padding=1), nn.Tanh())


@LR_POLICIES.register("plug_policy")
def plug_policy(optimizer, opt):
    """Plugin LR policy: the linear one under another name."""
    return linear_policy(optimizer, opt)
'''


def test_plugin_file_names_appear_in_help_and_choices_and_train(tmp_path, capsys, isolated):
    root = unaligned_dataset(tmp_path / "data")
    error = error_of(train, tiny(root, tmp_path) + ["--netG", "plug_gen"])
    assert "--netG" in error and "plug_gen" in error, "without the plugin the name is not a valid choice"

    plugin = write(tmp_path / "elsewhere" / "my_plugin.py", PLUGIN_FILE)
    with pytest.raises(SystemExit):
        train(["--plugin", str(plugin), "--help"])
    help_text = capsys.readouterr().out
    assert "plug_gen" in help_text and "plug_policy" in help_text
    train_one_epoch(root, tmp_path, ["--plugin", str(plugin), "--netG", "plug_gen", "--lr_policy", "plug_policy"])
    assert (tmp_path / "checkpoints" / "run" / "latest_net_G_A.pth").is_file()


def test_plugin_module_on_the_path_is_listed_with_its_origin(tmp_path, capsys, monkeypatch, isolated):
    write(tmp_path / "pkgs" / "my_plugins" / "__init__.py", "from . import gens  # noqa\n")
    write(tmp_path / "pkgs" / "my_plugins" / "gens.py", PLUGIN_FILE)
    plugin_file = write(tmp_path / "other.py", PLUGIN_FILE.replace("plug_", "file_"))
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    text = listing(capsys, ["--plugin", "my_plugins", "--plugin", str(plugin_file)], script="test")
    assert "plugin module my_plugins (--plugin)" in listing_line(text, "plug_gen")
    assert "Plugin generator: one 3x3 convolution and a tanh." in listing_line(text, "plug_gen")
    assert "plugin module my_plugins (--plugin)" in listing_line(text, "plug_policy")
    assert f"plugin file {plugin_file.resolve()} (--plugin)" in listing_line(text, "file_gen")
    assert "[built-in]" in listing_line(text, "cycle_gan")
    for title in ("Models (--model):", "Dataset modes (--dataset_mode):", "Generators (--netG):",
                  "Discriminators (--netD):", "Norm layers (--norm):", "Init types (--init_type):",
                  "GAN losses (--gan_mode):", "LR policies (--lr_policy):"):
        assert title in text

    error = error_of(train, ["--plugin", "no_such_plugin_module", "--list"])
    assert "--plugin no_such_plugin_module" in error and "PYTHONPATH" in error


# -- name clashes and broken plugins --------------------------------------------------------------------------


def test_name_clash_names_both_origins(tmp_path, isolated):
    plugin = write(tmp_path / "clash.py", '''
        from models import MODELS
        from models.cycle_gan_model import CycleGANModel

        @MODELS.register("cycle_gan")
        class MyCycleGAN(CycleGANModel):
            """Same name as the built-in."""
        ''')
    error = error_of(train, ["--plugin", str(plugin), "--list"])
    assert "'cycle_gan' is registered twice" in error
    assert "models.cycle_gan_model" in error and str(plugin.resolve()) in error
    assert f"leave out --plugin {plugin.resolve()}" in error


def test_broken_plugin_file_says_which_and_how_to_disable(tmp_path, isolated):
    plugin = write(tmp_path / "broken.py", "import torch\nraise RuntimeError('half-written plugin')\n")
    error = error_of(train, ["--plugin", str(plugin), "--model", "cycle_gan"])
    assert str(plugin.resolve()) in error and "RuntimeError: half-written plugin" in error
    assert f"leave out --plugin {plugin.resolve()}" in error


def fake_distribution(site: Path, dist: str, entry_points: str) -> None:
    """A minimal installed distribution (what pip leaves in site-packages), found by importlib.metadata."""
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    write(info / "METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    write(info / "entry_points.txt", f"[{plugins.ENTRY_POINT_GROUP}]\n{entry_points}\n")


def test_broken_entry_point_names_its_distribution_and_both_opt_outs(tmp_path, capsys, monkeypatch, isolated,
                                                                    autoload):
    site = tmp_path / "site"
    write(site / "bad_i2i_plugin.py", "raise ImportError('needs a library that is not installed')\n")
    fake_distribution(site, "bad-i2i-plugin", "bad = bad_i2i_plugin")
    monkeypatch.syspath_prepend(str(site))
    error = error_of(train, ["--list"])
    assert "bad-i2i-plugin" in error and "bad = bad_i2i_plugin" in error
    assert "needs a library that is not installed" in error
    assert "pip uninstall bad-i2i-plugin" in error and "--no_plugin_autoload" in error
    assert plugins.DISABLE_ENV in error
    # Either opt-out lets i2i run.
    assert "cycle_gan" in listing(capsys, ["--no_plugin_autoload"])
    monkeypatch.setenv(plugins.DISABLE_ENV, "1")
    assert "cycle_gan" in listing(capsys, [])


# -- the example package, installed: entry point -------------------------------------------------------------


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory) -> Path:
    """pip-install examples/plugin_package (a copy, so the build leaves nothing in the repo) into a folder."""
    tmp = tmp_path_factory.mktemp("example_plugin")
    source = shutil.copytree(EXAMPLE, tmp / "source", ignore=shutil.ignore_patterns("build", "*.egg-info"))
    site = tmp / "site"
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                             "--no-index", "--target", str(site), str(source)], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(site.glob("i2i_example_plugin-*.dist-info/entry_points.txt"))
    return site


def test_installed_example_package_trains_and_tests_through_its_entry_point(tmp_path, capsys, monkeypatch,
                                                                           installed_example, isolated, autoload):
    root = tmp_path / "photos"
    write_images(root / "train", 2, (32, 32))
    write_images(root / "test", 2, (32, 32), seed=1)
    monkeypatch.syspath_prepend(str(installed_example))
    text = listing(capsys, [])
    origin = "entry point example = i2i_example_plugin (distribution i2i-example-plugin 0.1.0)"
    for name in ("example_denoise", "example_noisy", "example_tiny"):
        assert origin in listing_line(text, name)

    train_one_epoch(root, tmp_path, ["--model", "example_denoise"])
    options = (tmp_path / "checkpoints" / "run" / "train_opt.txt").read_text()
    assert "example_tiny" in options and "example_noisy" in options  # the model's defaults applied
    test(tiny(root, tmp_path) + ["--model", "example_denoise", "--results_dir", str(tmp_path / "results")])
    images = {p.name for p in (tmp_path / "results" / "run" / "test_latest" / "images").glob("*.png")}
    assert {"000_noisy.png", "000_denoised.png", "000_clean.png"} <= images

    # Every registered model meets the model contract, the plugin's included.
    check_model_contract("example_denoise", tmp_path / "contract", universal_dataset(tmp_path / "contract_data"))


def test_no_plugin_autoload_leaves_installed_plugins_out(tmp_path, monkeypatch, installed_example, isolated,
                                                         autoload):
    monkeypatch.syspath_prepend(str(installed_example))
    root = tmp_path / "photos"
    write_images(root / "train", 1, (32, 32))
    error = error_of(train, tiny(root, tmp_path) + ["--model", "example_denoise", "--no_plugin_autoload"])
    assert "--model" in error and "example_denoise" in error


# -- the reference's API and file convention ------------------------------------------------------------------


def check_reference_style_run(root: Path, tmp: Path, extra: list[str]) -> None:
    args = tiny(root, tmp) + ["--model", "refstyle", *extra]
    train(args + ["--n_epochs", "1", "--n_epochs_decay", "0", "--display_id", "0", "--print_freq", "1"])
    run_dir = tmp / "checkpoints" / "run"
    assert {"latest_net_G.pth", "latest_net_D.pth"} <= {p.name for p in run_dir.iterdir()}
    log = (run_dir / "loss_log.txt").read_text()
    assert "G_GAN: " in log and "G_rec: " in log and "D_fake: " in log
    assert "dataset_mode: refpair" in (run_dir / "train_opt.txt").read_text()
    test(args + ["--results_dir", str(tmp / "results")])
    images = {p.name for p in (tmp / "results" / "run" / "test_latest" / "images").glob("*.png")}
    assert {"000_real_A.png", "000_fake_B.png", "000_real_B.png"} <= images


def test_reference_style_files_given_with_plugin(tmp_path, isolated):
    model = write(tmp_path / "mine" / "refstyle_model.py", REFERENCE_STYLE_MODEL)
    dataset = write(tmp_path / "mine" / "refpair_dataset.py", REFERENCE_STYLE_DATASET)
    check_reference_style_run(aligned_dataset(tmp_path / "data"), tmp_path,
                              ["--plugin", str(model), "--plugin", str(dataset)])


def copy_of_repo(dest: Path) -> Path:
    """i2i's sources, copied, so files can be dropped into models/ and data/ as a reference user would."""
    skip = {"checkpoints", "results", "datasets", "tests", "docs", "examples"}
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for path in ROOT.iterdir():
        if path.is_dir() and path.name not in skip and not path.name.startswith("."):
            shutil.copytree(path, dest / path.name, ignore=ignore)
        elif path.is_file() and path.suffix in (".py", ".toml", ".txt"):
            shutil.copy(path, dest / path.name)
    return dest


def run_copy(repo: Path, script: str, args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore::FutureWarning"}
    result = subprocess.run([sys.executable, str(repo / script), *args], cwd=cwd, capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, (result.stdout[-2000:], result.stderr[-3000:])
    return result


def test_reference_style_files_dropped_into_models_and_data(tmp_path):
    repo = copy_of_repo(tmp_path / "repo")
    write(repo / "models" / "refstyle_model.py", REFERENCE_STYLE_MODEL)
    write(repo / "data" / "refpair_dataset.py", REFERENCE_STYLE_DATASET)
    text = run_copy(repo, "test.py", ["--list"], tmp_path).stdout
    assert "file models/refstyle_model.py (reference convention)" in listing_line(text, "refstyle")
    assert "A conditional GAN written against the reference's API." in listing_line(text, "refstyle")
    assert "file data/refpair_dataset.py (reference convention)" in listing_line(text, "refpair")
    root = aligned_dataset(tmp_path / "data")
    run_copy(repo, "train.py", tiny(root, tmp_path) + ["--model", "refstyle", "--n_epochs", "1", "--n_epochs_decay",
                                                       "0", "--display_id", "0"], tmp_path)
    assert (tmp_path / "checkpoints" / "run" / "latest_net_D.pth").is_file()
