"""Reproduce a shipped preset: `python -m mmzoo.train <preset> [options]`.

Each preset of `presets/` is made by one recipe in `mmzoo.recipes`; this
command runs it by the preset's name, passing the remaining options on
(`--output DIR` saves the result as a preset folder; `--help` after the name
lists the recipe's options). `python -m mmzoo.train --list` lists them.

Example:
```
python -m mmzoo.train av_digits_attention --output /tmp/av_digits_attention
```
"""

import importlib
import sys

# preset name -> (recipe module, arguments placed before the user's)
RECIPES = {
    "av_digits_image": ("av_digits", ["av_digits_image"]),
    "av_digits_audio": ("av_digits", ["av_digits_audio"]),
    "av_digits_projection": ("av_digits", ["av_digits_projection"]),
    "av_digits_conv": ("av_digits", ["av_digits_conv"]),
    "av_digits_attention": ("av_digits", ["av_digits_attention"]),
    "av_digits_tensor": ("av_digits", ["av_digits_tensor"]),
    "av_digits_low_rank": ("av_digits", ["av_digits_low_rank"]),
    "av_digits_gated": ("av_digits", ["av_digits_gated"]),
    "av_digits_late": ("av_digits", ["av_digits_late"]),
    "av_digits_cross_modal": ("av_digits", ["av_digits_cross_modal"]),
    "av_digits_image_efficientnet": (
        "av_digits",
        ["av_digits_image_efficientnet"],
    ),
    "av_digits_projection_efficientnet": (
        "av_digits",
        ["av_digits_projection_efficientnet"],
    ),
    "fashion_mnist_cnn": ("fashion_mnist_cnn", []),
    "fashion_mnist_efficientnet_lite0": (
        "fashion_mnist_efficientnet_lite0",
        [],
    ),
    "efficientnet_lite0_imagenet": ("efficientnet_lite0_imagenet", []),
    "fine_food_sentiment_minilm": ("fine_food_sentiment", []),
    "minilm_l6_en": ("minilm_l6_en", []),
    "trimodal_digits_demo": ("trimodal_digits", []),
    "whisper_base_multi": ("whisper_base_multi", []),
    "whisper_spoken_digits": ("whisper_spoken_digits", []),
}


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "--list"):
        print(__doc__.strip())
        print("\nRecipes:\n  " + "\n  ".join(sorted(RECIPES)))
        return None
    name, rest = argv[0], argv[1:]
    if name not in RECIPES:
        raise SystemExit(
            f"Unknown recipe {name!r}. Known recipes: "
            + ", ".join(sorted(RECIPES))
        )
    module_name, prefix = RECIPES[name]
    module = importlib.import_module(f"mmzoo.recipes.{module_name}")
    return module.main(prefix + rest)


if __name__ == "__main__":
    main()
