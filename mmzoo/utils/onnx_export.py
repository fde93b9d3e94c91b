"""Export of a task as an ONNX model that serves raw inputs.

The ONNX graph holds the task's preprocessor in front of the model, as the
SavedModel of `mmzoo.utils.serving` does: uint8 images of any size and float
waveforms of any length go in, not features. ONNX has one graph per file, so
a missing modality is served with a mask input (`modality_mask`, as in
`predict`) rather than one function per subset.

Two things stand between a Keras model and ONNX, both handled here:

- The spectrogram. `keras.layers.MelSpectrogram` takes the real and
  imaginary parts of an FFT, which `tf2onnx` cannot convert (it converts an
  FFT followed by its absolute value only). While exporting, each
  `MelSpectrogram` computes its STFT as a real-valued DFT instead: one
  strided convolution of the framed, windowed signal with cosine and sine
  kernels, ops every ONNX runtime has (`dft_spectrograms`).
- The preprocessor runs TensorFlow ops (as it does inside `tf.data`), which
  `tf2onnx` converts. On JAX and PyTorch the task is saved as a preset and
  exported by a TensorFlow-backend process: the same weights, the same file.
"""

import contextlib
import json
import os
import subprocess
import sys
import tempfile

import keras
import numpy as np
from keras import ops

OPSET = 17


def _window(name, length):
    """`MelSpectrogram`'s window: periodic Hann or Hamming (TensorFlow's
    `hann_window` and `hamming_window`, `periodic=True`), or none."""
    t = np.arange(length)
    if name is None:
        return np.ones(length)
    if name == "hann":
        return 0.5 - 0.5 * np.cos(2 * np.pi * t / length)
    if name == "hamming":
        return 0.54 - 0.46 * np.cos(2 * np.pi * t / length)
    raise ValueError(
        f"No DFT form for the spectrogram window {name!r}: expected 'hann', "
        "'hamming' or None."
    )


def dft_kernel(fft_length, sequence_length, window="hann"):
    """The DFT of a windowed frame as a `(fft_length, 1, 2 * bins)`
    convolution kernel: the window (centred in the frame, as `keras.ops.
    stft` pads it) times cosines, then times minus sines, for the
    `bins = fft_length // 2 + 1` frequencies of a real FFT."""
    frame = np.zeros(fft_length)
    left = (fft_length - sequence_length) // 2
    frame[left : left + sequence_length] = _window(window, sequence_length)
    bins = fft_length // 2 + 1
    angle = (
        2 * np.pi * np.outer(np.arange(fft_length), np.arange(bins))
    ) / fft_length
    kernel = np.concatenate(
        [frame[:, None] * np.cos(angle), -frame[:, None] * np.sin(angle)],
        axis=1,
    )
    return kernel[:, None, :].astype("float32")


def dft_spectrogram(layer):
    """`layer._spectrogram` (a `keras.layers.MelSpectrogram`'s STFT
    magnitude to the power `mag_exp`) with the DFT as a strided
    convolution: the same values within float rounding."""
    fft_length = layer.fft_length
    bins = fft_length // 2 + 1
    kernel = dft_kernel(fft_length, layer.sequence_length, layer.window)

    def spectrogram(inputs):
        # `center=True`, as MelSpectrogram's STFT: reflect half a frame.
        half = fft_length // 2
        x = ops.pad(inputs, [(0, 0), (half, half)], mode="reflect")
        x = ops.conv(
            ops.expand_dims(x, -1),
            ops.convert_to_tensor(kernel, dtype=x.dtype),
            strides=layer.sequence_stride,
            padding="valid",
        )
        real, imaginary = x[..., :bins], x[..., bins:]
        magnitude = ops.sqrt(real * real + imaginary * imaginary)
        return ops.power(magnitude, layer.mag_exp)

    return spectrogram


def dft_whisper_features(converter):
    """`converter._extract_audio_features` (a `WhisperAudioConverter`'s
    log-mel features, TensorFlow ops) with the STFT as a DFT convolution,
    in float32: Whisper's Hann window is periodic, as `dft_kernel`'s."""
    import tensorflow as tf

    n = converter.num_fft_bins
    bins = n // 2 + 1
    # NumPy constants, made tensors inside the traced function (an eager
    # tensor would be captured, and become an input of the ONNX graph).
    kernel = dft_kernel(n, n, "hann")

    def features(audio):
        audio = tf.cast(audio, "float32")
        audio = tf.pad(audio, [[0, 0], [n // 2, n // 2]], mode="REFLECT")
        x = tf.nn.conv1d(
            audio[..., tf.newaxis], kernel, converter.stride, "VALID"
        )
        real, imaginary = x[..., :bins], x[..., bins:]
        magnitudes = (real * real + imaginary * imaginary)[:, :-1, :]
        return converter._log_mel_features(magnitudes)

    return features


@contextlib.contextmanager
def dft_spectrograms(*models):
    """Within this context every `keras.layers.MelSpectrogram` and
    `WhisperAudioConverter` of `models` (a task and its preprocessor)
    computes its STFT as a DFT convolution (`dft_spectrogram`,
    `dft_whisper_features`), so a graph traced here has no FFT."""
    from mmzoo.layers.preprocessing.whisper_audio_converter import (
        WhisperAudioConverter,
    )

    patched, seen = [], set()
    for model in models:
        for layer in model._flatten_layers():
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if isinstance(layer, keras.layers.MelSpectrogram):
                layer._spectrogram = dft_spectrogram(layer)
                patched.append((layer, "_spectrogram"))
            elif isinstance(layer, WhisperAudioConverter):
                layer._extract_audio_features = dft_whisper_features(layer)
                patched.append((layer, "_extract_audio_features"))
    try:
        yield [layer for layer, _ in patched]
    finally:
        for layer, name in patched:
            delattr(layer, name)


def _tf2onnx():
    try:
        import tf2onnx
    except ImportError as error:
        raise ImportError(
            "Exporting to ONNX needs `tf2onnx` (`pip install "
            "mmzoo[onnx]`)."
        ) from error
    return tf2onnx


def _erfc(ctx, node, name, args):
    """tf2onnx handler of TensorFlow's `Erfc` (in exact GELU), which ONNX
    lacks: `1 - Erf(x)`."""
    from tf2onnx import utils

    x = node.input[0]
    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(x))
    erf = ctx.make_node("Erf", [x], op_name_scope=node.name)
    one = ctx.make_const(
        utils.make_name(f"{node.name}_one"), np.array(1, dtype)
    )
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])


def export_raw_onnx(task, filepath, inputs, serve, verbose=True):
    """Writes `task`, its preprocessor in front, as an ONNX model.

    Args:
        task: a task whose preprocessor runs in TensorFlow graphs.
        filepath: the `.onnx` file.
        inputs: the graph's inputs, a list of named `tf.TensorSpec`s.
        serve: a function of those inputs (positional, in order) returning
            the task's outputs; traced with TensorFlow.
        verbose: print the inputs and outputs.
    """
    import tensorflow as tf

    tf2onnx = _tf2onnx()
    from keras.src.export.tf2onnx_lib import patch_tf2onnx

    patch_tf2onnx()  # Keras' own fix of tf2onnx for NumPy 2.
    with dft_spectrograms(task, task.preprocessor):
        function = tf.function(serve, input_signature=inputs)
        model, _ = tf2onnx.convert.from_function(
            function,
            input_signature=inputs,
            opset=OPSET,
            custom_op_handlers={"Erfc": (_erfc, [])},
            output_path=filepath,
        )
    if verbose:
        print(f"Saved an ONNX model (opset {OPSET}) at '{filepath}':")
        for value in model.graph.input:
            print(f"  input {value.name}")
        for value in model.graph.output:
            print(f"  output {value.name}")


EXPORT_SCRIPT = """
import json, sys
import mmzoo
mmzoo.load(sys.argv[1]).export(
    sys.argv[2],
    format=sys.argv[3],
    verbose=sys.argv[4] == "1",
    **json.loads(sys.argv[5]),
)
"""


def export_in_tensorflow(task, filepath, format, verbose, options=None):
    """Saves `task` as a preset and exports it (`format`: `"onnx"` or
    `"tf_saved_model"`, with `options`, JSON values) from a
    TensorFlow-backend process: the preprocessor's ops are TensorFlow's."""
    with tempfile.TemporaryDirectory() as directory:
        preset = os.path.join(directory, "preset")
        task.save_to_preset(preset)
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                EXPORT_SCRIPT,
                preset,
                os.path.abspath(filepath),
                format,
                "1" if verbose else "0",
                json.dumps(options or {}),
            ],
            env=dict(os.environ, KERAS_BACKEND="tensorflow"),
            capture_output=True,
            text=True,
        )
    if result.returncode != 0:
        raise RuntimeError(
            f"The {format} export (run with the TensorFlow backend, where "
            "the preprocessor's ops are) failed:\n" + result.stderr[-3000:]
        )
    if verbose:
        print(result.stdout.strip())
