"""Export of a task as a TensorFlow SavedModel that serves raw inputs.

The exported model holds the task's preprocessor (TensorFlow ops, as it runs
inside `tf.data`) in front of the model: it serves strings, uint8 or float
images and float waveforms, not features. A multimodal task gets one
serving function per non-empty subset of its modalities (`serve` takes all
of them, e.g. `serve_image` only the image), so a missing modality is
served as `predict` serves it: placeholders and a 0 in the modality mask.
"""

import itertools

import keras

def endpoint_name(subset, modalities):
    """`serve` for all the modalities, else `serve_<m1>_<m2>...`."""
    if list(subset) == list(modalities):
        return "serve"
    return "serve_" + "_".join(subset)


def raw_input_specs(task, image_dtype="uint8"):
    """`tf.TensorSpec`s of the raw inputs: text `(batch,)` strings, images
    `(batch, height, width, channels)` of any size (resized by the
    preprocessor), waveforms `(batch, samples)` of any length at the
    preprocessor's sample rate."""
    import tensorflow as tf

    preprocessor = task.preprocessor
    specs = {}
    for name in preprocessor.modalities:
        if name == "text":
            specs[name] = tf.TensorSpec((None,), tf.string, name=name)
        elif name == "image":
            # The image encoder's input, in its own layout.
            shape = task.backbone.input["image"].shape
            encoder = task.backbone.encoders["image"]
            first = getattr(encoder, "data_format", None) == "channels_first"
            channels = shape[1] if first else shape[-1]
            specs[name] = tf.TensorSpec(
                (None, None, None, channels), image_dtype, name=name
            )
        elif name == "audio":
            specs[name] = tf.TensorSpec((None, None), tf.float32, name=name)
        else:
            raise ValueError(f"No raw input spec for modality '{name}'.")
    return specs


def _feature_specs(task, subset):
    """The preprocessor's output for `subset`: the backbone's inputs of
    those modalities, and the modality mask."""
    import tensorflow as tf

    def spec(tensor, name):
        return tf.TensorSpec(tensor.shape, tensor.dtype, name=name)

    inputs = task.backbone.input
    specs = {}
    for name in list(subset) + ["modality_mask"]:
        value = inputs[name]
        if isinstance(value, dict):
            specs[name] = {k: spec(v, f"{name}_{k}") for k, v in value.items()}
        else:
            specs[name] = spec(value, name)
    converter = getattr(task.preprocessor, "audio_converter", None)
    samples = getattr(converter, "num_samples", None)
    if "audio" in specs and samples:
        # The preprocessor pads or trims every clip to this length: a fixed
        # length also lets JAX export the spectrogram (its reflect padding
        # needs a known length).
        specs["audio"] = tf.TensorSpec((None, samples), tf.float32, "audio")
    return specs


def multimodal_endpoints(task, image_dtype="uint8"):
    """A `MultimodalTask`'s serving functions: `{name: (raw input specs,
    feature specs)}`, one per non-empty subset of its modalities."""
    modalities = list(task.preprocessor.modalities)
    raw = raw_input_specs(task, image_dtype)
    endpoints = {}
    for size in range(len(modalities), 0, -1):
        for subset in itertools.combinations(modalities, size):
            endpoints[endpoint_name(subset, modalities)] = (
                {m: raw[m] for m in subset},
                _feature_specs(task, subset),
            )
    return endpoints


def export(
    task,
    endpoints,
    default_export,
    filepath,
    format="tf_saved_model",
    verbose=None,
    input_signature=None,
    onnx_graph=None,
    **kwargs,
):
    """A task's `export`: with a preprocessor and no `input_signature`, a
    SavedModel of raw inputs for `format="tf_saved_model"`
    (`endpoints(**kwargs)` gives its serving functions) or an ONNX model of
    raw inputs for `format="onnx"` (`onnx_graph(**kwargs)` gives its inputs
    and function, `mmzoo.utils.onnx_export`); else `default_export`
    (`keras.Model.export`, a model of features)."""
    raw = input_signature is None and task.preprocessor is not None
    verbose_bool = True if verbose is None else verbose
    backend = keras.backend.backend()
    raw_format = format == "tf_saved_model" or (
        format == "onnx" and onnx_graph is not None
    )
    if raw and raw_format and (
        backend == "torch" or (format == "onnx" and backend != "tensorflow")
    ):
        # Keras writes SavedModels from PyTorch only through `torch_xla`,
        # and the preprocessor's ops are TensorFlow's: a TensorFlow-backend
        # process loads a preset of the task and writes the same file.
        from mmzoo.utils import onnx_export

        onnx_export.export_in_tensorflow(
            task, filepath, format, verbose_bool, kwargs
        )
        return
    if raw and format == "tf_saved_model":
        export_raw_saved_model(
            task, filepath, endpoints(**kwargs), verbose=verbose_bool
        )
        return
    if raw and format == "onnx" and onnx_graph is not None:
        from mmzoo.utils import onnx_export

        inputs, serve = onnx_graph(**kwargs)
        onnx_export.export_raw_onnx(
            task, filepath, inputs, serve, verbose=verbose_bool
        )
        return
    return default_export(
        filepath,
        format=format,
        verbose=verbose,
        input_signature=input_signature,
        **kwargs,
    )


def audio_endpoints(task):
    """A task of one raw input, waveforms at 16 kHz, e.g. Whisper's
    classifier: `serve` takes `(batch, samples)` float32, any length."""
    import tensorflow as tf

    converter = task.preprocessor.audio_converter
    raw = tf.TensorSpec((None, None), tf.float32, name="audio")
    features = tf.TensorSpec(
        (None,) + tuple(converter.audio_shape()), tf.float32, name="features"
    )
    return {"serve": (raw, features)}


def check_onnx_modalities(task):
    """Refuses an ONNX model of raw inputs for a task that reads text."""
    if "text" in task.preprocessor.modalities:
        raise ValueError(
            "This task reads text, and its tokenizer (TensorFlow Text ops) "
            "has no ONNX form. Export a SavedModel (the default format), or "
            "an ONNX model of token ids with `input_signature`."
        )


def multimodal_onnx_graph(task, image_dtype="uint8"):
    """A `MultimodalTask`'s ONNX graph: `(inputs, serve)`. One input per
    modality (raw, as in `raw_input_specs`) and `modality_mask` `(batch,
    num_modalities)` int32, which every call gives: a 0 marks a missing
    modality, whose input is then any placeholder of its rank (one zero
    pixel or sample per row will do)."""
    import tensorflow as tf

    check_onnx_modalities(task)
    modalities = list(task.preprocessor.modalities)
    raw = raw_input_specs(task, image_dtype)
    mask = tf.TensorSpec(
        (None, len(modalities)), tf.int32, name="modality_mask"
    )
    inputs = [raw[m] for m in modalities] + [mask]

    def serve(*values):
        x = dict(zip(modalities, values[:-1]), modality_mask=values[-1])
        return task(task.preprocessor(x), training=False)

    return inputs, serve


def audio_onnx_graph(task):
    """A task of raw waveforms' ONNX graph: `audio` `(batch, samples)`
    float32 at 16 kHz, any length, in; the task's outputs out."""
    import tensorflow as tf

    audio = tf.TensorSpec((None, None), tf.float32, name="audio")

    def serve(waveforms):
        return task(task.preprocessor(waveforms), training=False)

    return [audio], serve


def export_raw_saved_model(task, filepath, endpoints, verbose=True):
    """Writes `task`, its preprocessor in front, as a SavedModel.

    Args:
        task: a task with a preprocessor that runs in TensorFlow graphs (as
            it does inside `tf.data`).
        filepath: the SavedModel folder.
        endpoints: `{name: (raw_spec, feature_spec)}`: each serving function
            takes one argument of structure `raw_spec` (`tf.TensorSpec`s),
            preprocesses it into `feature_spec` and returns the task's
            outputs. The model of features is kept as `<name>_features`.
        verbose: print the serving functions.
    """
    import tensorflow as tf

    if task.preprocessor is None:
        raise ValueError(
            "Exporting raw inputs needs the task's preprocessor; this task "
            "has none. Use `keras.Model.export` for a model of features."
        )
    if keras.backend.backend() == "torch":
        raise ValueError(
            "Keras writes PyTorch models as SavedModels only through "
            "`torch_xla`: use `task.export`, which has a TensorFlow-backend "
            "process write it."
        )
    archive = keras.export.ExportArchive()
    # Tracked once: JAX's archive lists the variables of each tracking.
    archive.track(task)
    for name, (raw, features) in endpoints.items():
        model_fn = archive.add_endpoint(
            f"{name}_features", _inference(task), input_signature=[features]
        )
        archive.add_endpoint(
            name,
            tf.function(
                _serving_function(task.preprocessor, model_fn),
                input_signature=[raw],
            ),
        )
    # Its TensorFlow resources (e.g. a tokenizer's vocabulary table).
    archive.track(task.preprocessor)
    archive.write_out(filepath, verbose=verbose)


def _inference(task):
    def call(features):
        return task(features, training=False)

    return call


def _serving_function(preprocessor, model_fn):
    def serve(inputs):
        return model_fn(preprocessor(inputs))

    return serve
