import keras
import numpy as np
from keras_hub.models import Task
from keras_hub.src.utils.pipeline_model import _train_validation_split

from mmzoo.api_export import mmzoo_export
from mmzoo.models.multimodal.multimodal_backbone import MultimodalBackbone
from mmzoo.models.multimodal.multimodal_preprocessor import (
    MultimodalPreprocessor,
)
from mmzoo.presets import check_preset
from mmzoo.utils import preset_weights


def _is_dataset(x):
    try:
        import tensorflow as tf

        if isinstance(x, tf.data.Dataset):
            return True
    except ImportError:
        pass
    return not isinstance(x, dict)


def _to_dataset(x, y, sample_weight, batch_size, shuffle):
    import tensorflow as tf

    data = keras.utils.pack_x_y_sample_weight(x, y, sample_weight)
    data = keras.tree.map_structure(
        lambda v: v if isinstance(v, tf.Tensor) else np.asarray(v), data
    )
    dataset = tf.data.Dataset.from_tensor_slices(data)
    if shuffle:
        size = int(dataset.cardinality())
        dataset = dataset.shuffle(size, reshuffle_each_iteration=True)
    return dataset.batch(batch_size or 32)


@mmzoo_export("mmzoo.models.MultimodalTask")
class MultimodalTask(preset_weights.TaskWeightsWithoutBackbone, Task):
    """Base class for mmzoo tasks on a `MultimodalBackbone`.

    It lets a task take the backbone's input dict with modalities left out
    (they are filled with placeholders and masked) and checks raw inputs
    eagerly, with the preprocessor's `check_values`, before `fit`, `predict`
    and `evaluate` build their `tf.data` pipelines.
    """

    backbone_cls = MultimodalBackbone
    preprocessor_cls = MultimodalPreprocessor

    def _check_preprocessor(self, preprocessor, backbone):
        if preprocessor is None:
            return
        if list(preprocessor.modalities) != list(backbone.modalities):
            raise ValueError(
                f"The preprocessor's modalities {preprocessor.modalities} "
                f"must match the backbone's {backbone.modalities}, in order "
                "(they fix the columns of 'modality_mask')."
            )

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, dict) and self.backbone is not None:
            inputs = self.backbone.standardize_inputs(inputs)
        return super().__call__(inputs, *args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        inputs = self.backbone.standardize_inputs(inputs)
        return super().call(inputs, training=training, mask=mask)

    def _check_raw(self, x):
        if self.preprocessor is not None and not _is_dataset(x):
            self.preprocessor.check_values(x)

    def fit(
        self,
        x=None,
        y=None,
        batch_size=None,
        sample_weight=None,
        validation_data=None,
        validation_split=None,
        shuffle=True,
        **kwargs,
    ):
        self._check_raw(x)
        if isinstance(validation_data, tuple) and validation_data:
            self._check_raw(validation_data[0])
        if not _is_dataset(x):
            if validation_split and validation_data is None:
                (x, y, sample_weight), validation_data = (
                    _train_validation_split(
                        (x, y, sample_weight), validation_split
                    )
                )
            # keras-hub turns arrays into a `tf.data.Dataset` without
            # shuffling them; shuffle each epoch as `keras.Model.fit` does.
            x = _to_dataset(x, y, sample_weight, batch_size, shuffle)
            y = sample_weight = batch_size = None
            shuffle = False  # done above; Keras cannot shuffle a dataset
        return super().fit(
            x=x,
            y=y,
            batch_size=batch_size,
            sample_weight=sample_weight,
            validation_data=validation_data,
            shuffle=shuffle,
            **kwargs,
        )

    def evaluate(self, x=None, y=None, **kwargs):
        self._check_raw(x)
        return super().evaluate(x=x, y=y, **kwargs)

    def predict(self, x=None, **kwargs):
        self._check_raw(x)
        return super().predict(x=x, **kwargs)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Instantiate the task from a preset.

        `preset` is the name of an mmzoo preset (see `mmzoo.list_presets()`),
        a local preset directory, or a keras-hub handle such as
        `"hf://org/model"` or `"kaggle://..."`.
        """
        check_preset(preset)
        return preset_weights.load_task(
            super().from_preset, preset, load_weights, **kwargs
        )


@mmzoo_export("mmzoo.models.MultimodalClassifier")
class MultimodalClassifier(MultimodalTask):
    """A classifier on the fused output of a `MultimodalBackbone`.

    `logits = Dense(num_classes)(Dropout(fused_output))`. With a
    `preprocessor`, `fit`, `predict` and `evaluate` take raw inputs: a dict
    with any of `"text"` strings, `"image"` arrays and `"audio"` waveforms,
    leaving out the modalities that are missing. It compiles on construction
    with Adam, sparse categorical cross-entropy and accuracy, so `fit` works
    without a `compile` call.

    Args:
        backbone: a `mmzoo.models.MultimodalBackbone`.
        num_classes: int. Number of classes.
        preprocessor: a `mmzoo.models.MultimodalPreprocessor`, or `None` to
            feed preprocessed inputs.
        activation: activation of the output layer. `None` (default) returns
            logits; `"softmax"` returns probabilities (the default loss
            follows).
        dropout: float. Dropout rate before the output layer.

    Example:
    ```python
    classifier = mmzoo.models.MultimodalClassifier(
        backbone=backbone, preprocessor=preprocessor, num_classes=10
    )
    classifier.fit({"image": images, "audio": waves}, labels, epochs=3)
    classifier.predict({"audio": waves})  # image missing
    classifier.save_to_preset("./my_preset")
    restored = mmzoo.models.MultimodalClassifier.from_preset("./my_preset")
    ```
    """

    def __init__(
        self,
        backbone,
        num_classes,
        preprocessor=None,
        activation=None,
        dropout=0.0,
        **kwargs,
    ):
        self._check_preprocessor(preprocessor, backbone)
        # Set before `Task.__init__`, which compiles with the defaults.
        self.activation = keras.activations.get(activation)
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.output_dropout = keras.layers.Dropout(
            dropout, dtype=backbone.dtype_policy, name="output_dropout"
        )
        self.output_dense = keras.layers.Dense(
            num_classes,
            activation=activation,
            dtype=backbone.dtype_policy,
            name="logits",
        )

        # === Functional Model ===
        inputs = backbone.input
        x = backbone(inputs)["fused_output"]
        x = self.output_dropout(x)
        outputs = self.output_dense(x)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # === Config ===
        self.num_classes = num_classes
        self.dropout = dropout

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        metrics="auto",
        **kwargs,
    ):
        """Configures the classifier for training.

        `"auto"` picks Adam (learning rate 1e-3), sparse categorical
        cross-entropy (from logits unless the activation is softmax) and
        sparse categorical accuracy. Other arguments go to
        `keras.Model.compile`.
        """
        if optimizer == "auto":
            optimizer = keras.optimizers.Adam(1e-3)
        if loss == "auto":
            from_logits = self.activation in (None, keras.activations.linear)
            loss = keras.losses.SparseCategoricalCrossentropy(
                from_logits=from_logits
            )
        if metrics == "auto":
            metrics = [keras.metrics.SparseCategoricalAccuracy("accuracy")]
        super().compile(
            optimizer=optimizer, loss=loss, metrics=metrics, **kwargs
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "activation": keras.activations.serialize(self.activation),
                "dropout": self.dropout,
            }
        )
        return config
