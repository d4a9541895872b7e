"""The dataset presets of `unlearnkit run vision` are the files configs/vision*.yaml: what each resolves to
(pinned), where they are found (source checkout, installed wheel), and what a missing or unknown preset says."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

from unlearnkit.config import load_yaml
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash
from unlearnkit.recipes import vision_config
from unlearnkit.recipes.vision import PRESET_FILES, preset, preset_path, resolve_config

ROOT = Path(__file__).resolve().parents[1]

# content_hash of resolve_config(...).model_dump() for each dataset with nothing else given: the settings every
# cached model, run name and entry hash of that dataset derive from. A changed preset (or config model) changes it.
PINNED = {"synthetic": "5e09c5b0d820", "fashion-mnist": "c09353762a7b", "cifar10": "4a8aa2b2a643",
          "cifar100": "f088a6b6380e"}


@pytest.mark.parametrize("dataset", list(PRESET_FILES))
def test_each_preset_resolves_to_the_pinned_config(dataset):
    cfg = resolve_config(None, flags={"data": {"dataset": dataset}})
    dump = cfg.model_dump()
    assert content_hash(dump) == PINNED[dataset], json.dumps(dump, indent=1, sort_keys=True)
    assert cfg.data.dataset == dataset and cfg.seeds == [0, 1, 2] and cfg.methods == ["retrain", "ft", "ga", "rl"]
    # the values that define each preset, spelled out
    if dataset == "synthetic":
        assert (cfg.model.arch, cfg.model.width, cfg.train.epochs, cfg.train.batch_size) == ("cnn", 16, 20, 128)
        assert cfg.cpu_threads == 1 and cfg.method_params["tarf"] == {"epochs": 10, "lr": 0.1, "k0": 0.01, "t1": 0.5,
                                                                       "t0": 5}
    elif dataset == "fashion-mnist":
        assert (cfg.model.arch, cfg.train.epochs, cfg.train.lr, cfg.unlearn_batch_size) == ("cnn_flat", 10, 0.02, 32)
        assert cfg.data.fashion_mnist.train_per_class == 300 and cfg.method_params["ga"] == {"epochs": 5, "lr": 0.0001}
    else:
        assert (cfg.model.arch, cfg.train.epochs, cfg.train.batch_size, cfg.unlearn_batch_size) == ("resnet18", 100,
                                                                                                    256, 256)
        assert cfg.data.augment and cfg.method_params == {} and cfg.cpu_threads is None


@pytest.mark.parametrize("dataset", list(PRESET_FILES))
def test_a_preset_is_its_file_in_the_checkout(dataset):
    path = ROOT / "configs" / PRESET_FILES[dataset]
    assert preset_path(dataset) == path
    assert preset(dataset) == load_yaml(path) and preset(dataset)["data"]["dataset"] == dataset
    # the file given with --config resolves to the same config as --dataset
    assert resolve_config(str(path)) == resolve_config(None, flags={"data": {"dataset": dataset}})


def test_later_layers_override_the_preset():
    cfg = resolve_config(None, ["train.epochs=3", "method_params.ft.lr=0.5"], {"data": {"dataset": "fashion-mnist"}})
    assert cfg.train.epochs == 3 and cfg.method_params["ft"] == {"epochs": 4, "lr": 0.5}
    assert cfg.model.arch == "cnn_flat"  # the rest of the preset stays
    preset("synthetic")["train"]["epochs"] = 999  # a fresh dict each call: callers cannot alter the preset
    assert preset("synthetic")["train"]["epochs"] == 20


def test_installed_presets_are_found_under_the_prefix(tmp_path, monkeypatch):
    """Installed from a wheel there is no checkout configs/: the presets come from <prefix>/share/unlearnkit/configs."""
    site = tmp_path / "prefix" / "lib" / "python3" / "site-packages" / "unlearnkit" / "recipes"
    monkeypatch.setattr(vision_config, "__file__", str(site / "vision_config.py"))
    monkeypatch.setattr(vision_config.sysconfig, "get_path", lambda name, scheme=None: str(tmp_path / "prefix"))
    shared = tmp_path / "prefix" / "share" / "unlearnkit" / "configs"
    with pytest.raises(UnlearnkitError, match=r"the cifar10 preset vision_cifar10\.yaml is in none of .*share/unlearnkit"):
        preset("cifar10")
    shared.mkdir(parents=True)
    for name in PRESET_FILES.values():
        shutil.copy(ROOT / "configs" / name, shared / name)
    assert preset_path("cifar10") == shared / "vision_cifar10.yaml"
    assert content_hash(resolve_config(None, flags={"data": {"dataset": "cifar10"}}).model_dump()) == PINNED["cifar10"]


def test_the_wheel_ships_every_preset_where_they_are_looked_for():
    """pyproject's data-files put configs/vision*.yaml under share/unlearnkit/configs of the install prefix."""
    data_files = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["data-files"]
    shipped = {p.name for pattern in data_files["share/unlearnkit/configs"] for p in ROOT.glob(pattern)}
    assert shipped >= set(PRESET_FILES.values())
    assert any(d.parts[-3:] == ("share", "unlearnkit", "configs") for d in vision_config.preset_dirs())


def test_unknown_dataset_is_a_one_line_error():
    with pytest.raises(UnlearnkitError, match="unknown dataset 'mnist'; use synthetic, fashion-mnist, cifar10, cifar100"):
        preset("mnist")
