"""The configuration of ``unlearnkit run vision``: the config models, the dataset presets, the resolved config,
and the run's setting (what every entry of a run shares, and the hashes that name the run and its entries).

The dataset presets are the YAML files ``configs/vision.yaml`` (synthetic), ``configs/vision_fashion_mnist.yaml``,
``configs/vision_cifar10.yaml`` and ``configs/vision_cifar100.yaml`` — the only place their values are written.
:func:`preset_dirs` finds them in a source checkout (``<repo>/configs``) or, installed from a wheel, under
``<prefix>/share/unlearnkit/configs`` (``[tool.setuptools.data-files]`` of ``pyproject.toml`` ships them there).
"""

from __future__ import annotations

import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from unlearnkit.config import Seed, StrictModel, deep_merge, load_yaml, parse_overrides, validate
from unlearnkit.data.fashion_mnist import FashionMNISTConfig
from unlearnkit.data.images import ImageSet, SyntheticConfig, synthetic
from unlearnkit.data.scenarios import SCENARIOS, Scenario, ScenarioConfig
from unlearnkit.engine.executor import ExecutorConfig
from unlearnkit.engine.vision import ClassifierRecipe
from unlearnkit.errors import UnlearnkitError
from unlearnkit.io import content_hash, file_hash
from unlearnkit.methods import MethodSpec, get_method, methods_for
from unlearnkit.models.classifiers import ModelConfig
from unlearnkit.results.layout import entry_name
from unlearnkit.results.store import EntryInfo, Run

# Order of the seed's table; methods registered later follow alphabetically.
METHOD_ORDER = ["retrain", "ft", "rl", "ga", "iu", "bs", "l1_sparse", "salun", "scrub", "tarf"]
DEFAULT_METHODS = ["retrain", "ft", "ga", "rl"]
# The preset file of each dataset (in configs/).
PRESET_FILES = {"synthetic": "vision.yaml", "fashion-mnist": "vision_fashion_mnist.yaml",
                "cifar10": "vision_cifar10.yaml", "cifar100": "vision_cifar100.yaml"}


class DataConfig(StrictModel):
    dataset: Literal["synthetic", "cifar10", "cifar100", "fashion-mnist"] = "synthetic"
    data_dir: str | None = Field(None, description="local CIFAR / Fashion-MNIST directory; None = find or download")
    download: bool = True
    augment: bool = Field(False, description="random crop + flip while training (standard for CIFAR)")
    synthetic: SyntheticConfig = SyntheticConfig()
    fashion_mnist: FashionMNISTConfig = FashionMNISTConfig()


class VisionEvalConfig(StrictModel):
    batch_size: int = Field(512, ge=1)
    mia_max_pairs: int = Field(5000, ge=10, description="cap on the member / non-member sample size of the MIA SVC")


class VisionRunConfig(StrictModel):
    data: DataConfig = DataConfig()
    scenario: ScenarioConfig = ScenarioConfig()
    scenarios: list[Literal["all_matched", "target_mismatch", "model_mismatch", "data_mismatch"]] = list(SCENARIOS)
    model: ModelConfig = ModelConfig()
    train: ClassifierRecipe = ClassifierRecipe()
    unlearn_batch_size: int = Field(128, ge=1, description="batch size of the D_f / D_un loaders methods receive")
    methods: list[str] = list(DEFAULT_METHODS)
    method_params: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per-method overrides")
    seeds: list[Seed] = Field([0, 1, 2], min_length=1, max_length=1000, description="each seed trains its own θ_o and θ_r")
    cpu_threads: int | None = Field(None, ge=1, le=1024, description="torch threads on a CPU (None = torch's default)")
    eval: VisionEvalConfig = VisionEvalConfig()
    report: bool = Field(False, description="write the run's self-contained HTML report (report.html) at the end")
    tracker: Literal["tensorboard", "wandb", "mlflow"] | None = Field(
        None, description="log every training step of each method to this experiment tracker, under <run>/trackers/")
    executor: ExecutorConfig = Field(ExecutorConfig(), description="how the (scenario, seed) entries run: local or ray")


# ---------------------------------------------------------------------------------------------
# Presets and the resolved config


def preset_dirs() -> list[Path]:
    """Where the preset files are looked for, first match wins: the source checkout's ``configs/``, then the
    copy a wheel installs under ``<prefix>/share/unlearnkit/configs`` (the environment's prefix, then the user's)."""
    dirs = [Path(__file__).resolve().parents[3] / "configs"]
    for scheme in (sysconfig.get_default_scheme(), sysconfig.get_preferred_scheme("user")):
        dirs.append(Path(sysconfig.get_path("data", scheme)) / "share" / "unlearnkit" / "configs")
    return list(dict.fromkeys(dirs))


def preset_path(dataset: str) -> Path:
    """The preset file of ``dataset``."""
    if dataset not in PRESET_FILES:
        raise UnlearnkitError(f"unknown dataset {dataset!r}; use {', '.join(PRESET_FILES)}")
    dirs = preset_dirs()
    for d in dirs:
        if (d / PRESET_FILES[dataset]).is_file():
            return d / PRESET_FILES[dataset]
    raise UnlearnkitError(f"the {dataset} preset {PRESET_FILES[dataset]} is in none of {', '.join(map(str, dirs))}: "
                          "reinstall unlearnkit, or run from its source checkout")


def preset(dataset: str) -> dict[str, Any]:
    """The dataset's preset: the content of its YAML file (a fresh dict on every call)."""
    return load_yaml(preset_path(dataset))


def resolve_config(config_file: str | None = None, overrides: list[str] | None = None,
                   flags: dict[str, Any] | None = None) -> VisionRunConfig:
    """preset(dataset) ← config file ← flags ← key=value overrides."""
    file_data = load_yaml(config_file) if config_file is not None else {}
    over = parse_overrides(overrides or [])
    flags = flags or {}
    dataset = (flags.get("data", {}).get("dataset") or over.get("data", {}).get("dataset")
               or file_data.get("data", {}).get("dataset") or "synthetic")
    data = deep_merge(deep_merge(deep_merge(preset(dataset), file_data), flags), over)
    cfg = validate(VisionRunConfig, data)
    cfg.methods = expand_methods(cfg.methods)
    for name, params in cfg.method_params.items():
        spec = get_method(name, "vision")
        validate(spec.params, params, prefix=f"method_params.{name}")
    return cfg


def expand_methods(names: list[str]) -> list[str]:
    registered = [s.name for s in methods_for("vision")]
    out: list[str] = []
    for n in names:
        if n.lower() == "all":
            out += sorted(registered, key=lambda m: (METHOD_ORDER.index(m) if m in METHOD_ORDER else 99, m))
        else:
            out.append(get_method(n, "vision").name)
    seen: set[str] = set()
    return [m for m in out if not (m in seen or seen.add(m))]


def method_params(cfg: VisionRunConfig, spec: MethodSpec) -> StrictModel:
    return validate(spec.params, cfg.method_params.get(spec.name, {}), prefix=f"method_params.{spec.name}")


# ---------------------------------------------------------------------------------------------
# The run's setting


def run_name(cfg: VisionRunConfig, data_key: dict) -> str:
    return f"vision-{cfg.data.dataset}-{content_hash(setting_key(cfg, data_key))}"


def setting_key(cfg: VisionRunConfig, data_key: dict) -> dict:
    """Everything the entries of a run share (the run's name hashes it)."""
    return {"data_key": data_key, "data": cfg.data.model_dump(exclude={"data_dir", "download", "fashion_mnist"}),
            "scenario": cfg.scenario.model_dump(), "model": cfg.model.model_dump(), "train": cfg.train.model_dump(),
            "unlearn_batch_size": cfg.unlearn_batch_size, "eval": cfg.eval.model_dump()}


@dataclass
class VisionSetting:
    """What the (scenario, seed) units of one run share: the config, the image set, its content key, the
    resolved class choice and the results-layer run."""

    cfg: VisionRunConfig
    ds: ImageSet
    data_key: dict
    choice: Any
    run: Run

    def entry(self, sc: Scenario, method: str, seed: int) -> EntryInfo:
        params = {} if method in ("original", "reference") else _params_key(self.cfg, get_method(method, "vision"))
        inputs = {"setting": content_hash(setting_key(self.cfg, self.data_key)), "scenario": sc.name,
                  "choice": list(map(str, self.choice)), "method": method, "params": params, "seed": seed}
        return EntryInfo(name=entry_name(method, seed, sc.name), hash=content_hash(inputs), method=method, seed=seed,
                         params_hash=content_hash(params), group=sc.name, inputs=inputs)


def _params_key(cfg: VisionRunConfig, spec: MethodSpec) -> dict:
    p = method_params(cfg, spec).model_dump()
    return {"params": p, "train": cfg.train.model_dump()} if spec.name == "retrain" else {"params": p}


def load_images(cfg: DataConfig) -> tuple[ImageSet, dict]:
    """The image set and a key that identifies its content (for the caches)."""
    if cfg.dataset == "synthetic":
        return synthetic(cfg.synthetic), {"dataset": "synthetic", "synthetic": cfg.synthetic.model_dump()}
    if cfg.dataset == "fashion-mnist":
        from unlearnkit.data.fashion_mnist import load_fashion_mnist

        ds = load_fashion_mnist(cfg.data_dir, cfg.download, cfg.fashion_mnist)
        return ds, {"dataset": "fashion-mnist", "content": ds.info["content_hash"],
                    "subset": cfg.fashion_mnist.model_dump()}
    from unlearnkit.data.cifar import _FILES, find_folder, load_cifar

    ds = load_cifar(cfg.dataset, cfg.data_dir, cfg.download)
    folder = find_folder(cfg.dataset, ds.info["folder"])
    return ds, {"dataset": cfg.dataset, "files": file_hash([folder / f for f in _FILES[cfg.dataset]])}
