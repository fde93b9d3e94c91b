"""Tiny models and data shared by the tests."""

import struct

import keras
import keras_hub
import numpy as np

import mmzoo

VOCAB = [
    "[PAD]",
    "[UNK]",
    "[CLS]",
    "[SEP]",
    "[MASK]",
    "zero",
    "one",
    "two",
    "three",
    "a",
    "cat",
    "dog",
]
WORDS = np.array(["zero", "one", "two", "three"])
SAMPLE_RATE = 8000
NUM_SAMPLES = 1000
IMAGE_SIZE = 12
SEQUENCE_LENGTH = 6


# The shipped presets are evaluated on their whole test set on ONE backend,
# TensorFlow (the one they were trained on); on JAX and PyTorch they must
# reproduce the recorded predictions of the first `CHECKED_EXAMPLES` test
# examples: the same weights giving the same classes is what differs between
# backends, and the whole set costs minutes per backend.
FULL_EVALUATION_BACKEND = "tensorflow"
CHECKED_EXAMPLES = 250  # one batch of the evaluations (250)


def full_evaluation():
    """Whether this backend evaluates shipped presets on the whole set."""
    return keras.config.backend() == FULL_EVALUATION_BACKEND


def tiny_encoders():
    return {
        "text": mmzoo.models.TextEncoder(
            vocabulary_size=len(VOCAB),
            num_layers=1,
            num_heads=2,
            hidden_dim=8,
            intermediate_dim=16,
            max_sequence_length=SEQUENCE_LENGTH,
        ),
        "image": mmzoo.models.ImageEncoder(
            image_shape=(IMAGE_SIZE, IMAGE_SIZE, 1),
            filters=(4, 8),
            hidden_dim=8,
        ),
        "audio": mmzoo.models.AudioEncoder(
            sample_rate=SAMPLE_RATE,
            num_mel_bins=16,
            fft_length=128,
            sequence_stride=64,
            filters=(4,),
            hidden_dim=8,
        ),
    }


def tiny_backbone(fusion=None, modalities=("text", "image", "audio")):
    encoders = tiny_encoders()
    encoders = {m: encoders[m] for m in modalities}
    fusion = fusion or mmzoo.layers.AttentionFusion(output_dim=8, num_heads=2)
    return mmzoo.models.MultimodalBackbone(encoders=encoders, fusion=fusion)


def tiny_preprocessor(modalities=("text", "image", "audio")):
    components = {
        "tokenizer": keras_hub.tokenizers.BertTokenizer(vocabulary=VOCAB)
        if "text" in modalities
        else None,
        "image_converter": keras_hub.layers.ImageConverter(
            image_size=(IMAGE_SIZE, IMAGE_SIZE), scale=1 / 255.0
        )
        if "image" in modalities
        else None,
        "audio_converter": mmzoo.layers.WaveformConverter(
            sample_rate=SAMPLE_RATE, num_samples=NUM_SAMPLES
        )
        if "audio" in modalities
        else None,
    }
    return mmzoo.models.MultimodalPreprocessor(
        sequence_length=SEQUENCE_LENGTH,
        modalities=list(modalities),
        **components,
    )


def tiny_classifier(fusion=None, modalities=("text", "image", "audio")):
    return mmzoo.models.MultimodalClassifier(
        backbone=tiny_backbone(fusion, modalities),
        preprocessor=tiny_preprocessor(modalities),
        num_classes=4,
    )


def raw_batch(n=16, seed=0):
    """Raw inputs whose label is visible in every modality."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    image = rng.integers(0, 40, (n, 14, 14, 1))
    for i, label in enumerate(y):
        image[i, :, label * 3 : label * 3 + 3] = 255
    t = np.arange(900) / SAMPLE_RATE
    audio = np.stack(
        [np.sin(2 * np.pi * (300 + 400 * label) * t) for label in y]
    ) + 0.05 * rng.standard_normal((n, 900))
    x = {
        "text": WORDS[y],
        "image": image.astype("uint8"),
        "audio": audio.astype("float32"),
    }
    return x, y


def to_numpy(x):
    return keras.tree.map_structure(keras.ops.convert_to_numpy, x)


def ct2_string(text):
    raw = text.encode("utf-8") + b"\x00"
    return struct.pack("<H", len(raw)) + raw


def write_ctranslate2_model(
    path, variables, aliases=(), version=6, extra=b"", spec="TestSpec"
):
    """A CTranslate2 model.bin, written from its documented layout."""
    type_ids = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}
    out = struct.pack("<I", version) + ct2_string(spec)
    out += struct.pack("<II", 2, len(variables))
    for name, value in variables.items():
        out += ct2_string(name) + struct.pack("<B", value.ndim)
        out += b"".join(struct.pack("<I", d) for d in value.shape)
        out += struct.pack("<B", type_ids[value.dtype.name])
        out += struct.pack("<I", value.nbytes) + value.tobytes()
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases:
        out += ct2_string(alias) + ct2_string(target)
    path.write_bytes(out + extra)
    return out


# A tiny Whisper (keras-hub's config names) for the Whisper tests.
TINY_WHISPER = dict(
    vocabulary_size=40,
    num_layers=2,
    num_heads=2,
    hidden_dim=8,
    intermediate_dim=16,
    num_mels=80,
    max_encoder_sequence_length=60,
    max_decoder_sequence_length=10,
)


def randomise_weights(model, seed=0):
    """Gives every weight (biases too) N(0, 0.3) values drawn from `seed`."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(
            rng.normal(0, 0.3, tuple(variable.shape)).astype("float32")
        )
    return model


def tiny_keras_hub_whisper(seed=0):
    """keras-hub's WhisperBackbone with random weights (biases too)."""
    keras.utils.set_random_seed(seed)
    return randomise_weights(
        keras_hub.models.WhisperBackbone(**TINY_WHISPER), seed
    )
