import keras
from keras import ops

from mmzoo.api_export import mmzoo_export
from mmzoo.utils.modality_checks import check_mask_shape
from mmzoo.utils.modality_checks import present_modalities


def masked_softmax(logits, mask, axis=-1):
    """Softmax of `logits` over `axis` where the bool `mask` is true.

    Written out, so that on every backend masked entries get exactly 0, a
    lone unmasked entry exactly 1, and an all-masked slice all zeros, never
    NaN. Compute it in float32 under mixed precision.
    """
    logits = ops.where(mask, logits, ops.full_like(logits, -1e9))
    logits = logits - ops.amax(logits, axis=axis, keepdims=True)
    weights = ops.where(mask, ops.exp(logits), ops.zeros_like(logits))
    total = ops.sum(weights, axis=axis, keepdims=True)
    return weights / ops.maximum(total, ops.ones_like(total) * 1e-30)


@mmzoo_export("mmzoo.layers.ModalityFusion")
class ModalityFusion(keras.layers.Layer):
    """Base class for layers that fuse a dict of modalities into one tensor.

    A fusion layer is called on a dict `{modality_name: tensor}`. Each tensor
    is either a vector `(batch, dim)` or a sequence `(batch, steps, dim)`, and
    `dim` may differ per modality. An optional `modality_mask` of shape
    `(batch, num_modalities)` says which modalities are present in each row;
    its columns follow `self.modalities`. A masked modality contributes
    exactly nothing to the output, and leaving a modality's key out of the
    dict is the same as masking it for the whole batch. Only a call with no
    known modality at all is an error.

    Subclasses create their per-modality weights in `build_modalities()` and
    implement `fuse()`, which receives the validated features and a float
    mask.

    Args:
        modalities: optional list of modality names, fixing the order of the
            mask columns. Defaults to the sorted keys of the first input.
        **kwargs: other keyword arguments passed to `keras.layers.Layer`,
            including `name`, `dtype` and `trainable`.
    """

    def __init__(self, modalities=None, **kwargs):
        super().__init__(**kwargs)
        if modalities is not None:
            modalities = list(modalities)
            if len(set(modalities)) != len(modalities):
                raise ValueError(
                    "`modalities` must not contain duplicates. "
                    f"Received: modalities={modalities}"
                )
        self.modalities = modalities
        self.feature_dims = None
        self.feature_ranks = None
        self._steps = None

    def build(self, input_shape):
        if not isinstance(input_shape, dict):
            raise ValueError(
                f"{self.__class__.__name__} expects a dict "
                "`{modality_name: tensor}`. Received input of shape "
                f"{input_shape}."
            )
        if self.modalities is None:
            self.modalities = sorted(input_shape)
        unknown = sorted(set(input_shape) - set(self.modalities))
        if unknown:
            raise ValueError(
                f"{self.__class__.__name__} got unknown modalities {unknown}. "
                f"Expected keys among {self.modalities}."
            )
        missing = [m for m in self.modalities if m not in input_shape]
        if missing:
            raise ValueError(
                f"{self.__class__.__name__} must be built with every "
                f"modality; missing {missing}. Later calls may leave "
                "modalities out."
            )
        dims, ranks, steps = {}, {}, {}
        for name in self.modalities:
            shape = tuple(input_shape[name])
            if len(shape) not in (2, 3):
                raise ValueError(
                    f"Modality '{name}' must be a vector (batch, dim) or a "
                    f"sequence (batch, steps, dim). Received shape {shape}."
                )
            if shape[-1] is None:
                raise ValueError(
                    f"Modality '{name}' needs a known feature size in its "
                    f"last axis. Received shape {shape}."
                )
            dims[name], ranks[name] = int(shape[-1]), len(shape)
            steps[name] = shape[1] if len(shape) == 3 else None
        if len(set(ranks.values())) > 1:
            raise ValueError(
                f"{self.__class__.__name__} fuses either all vectors or all "
                f"sequences. Received ranks {ranks}."
            )
        self.feature_dims, self.feature_ranks = dims, ranks
        self._steps = steps
        self.build_modalities(dims)
        self.built = True

    def build_modalities(self, feature_dims):
        """Create weights, given `{modality_name: feature_dim}`."""
        raise NotImplementedError

    def fuse(self, features, mask, training=None):
        """Fuse validated features.

        Args:
            features: list of tensors in `self.modalities` order; a missing
                modality is `None`.
            mask: float tensor `(batch, num_modalities)` in the compute
                dtype, 1 where a modality is present.
        """
        raise NotImplementedError

    def call(self, inputs, modality_mask=None, training=None):
        features, mask = self.standardize(inputs, modality_mask)
        return self.fuse(features, mask, training=training)

    def standardize(self, inputs, modality_mask=None):
        """Validate inputs; return ordered features and a float mask."""
        present = present_modalities(
            inputs, self.modalities, self.__class__.__name__, takes_mask=False
        )
        rank = self.feature_ranks[present[0]]
        for name in present:
            shape = tuple(inputs[name].shape)
            if len(shape) != rank or shape[-1] != self.feature_dims[name]:
                expected = (
                    "(batch, steps, dim)" if rank == 3 else "(batch, dim)"
                )
                raise ValueError(
                    f"Modality '{name}' must have shape {expected} with "
                    f"dim={self.feature_dims[name]}. Received shape {shape}."
                )
        first = inputs[present[0]]
        batch_size = ops.shape(first)[0]
        num_modalities = len(self.modalities)
        # Which modalities are in the dict at all (static, per call).
        presence = [1.0 if m in present else 0.0 for m in self.modalities]
        presence = ops.convert_to_tensor([presence], dtype=self.compute_dtype)
        if modality_mask is None:
            mask = ops.ones((batch_size, num_modalities), self.compute_dtype)
        else:
            check_mask_shape(modality_mask.shape, self.modalities)
            mask = ops.cast(ops.cast(modality_mask, "bool"), self.compute_dtype)
        mask = mask * presence
        features = [
            inputs[m] if m in present else None for m in self.modalities
        ]
        return features, mask

    def clone_initializer(self, initializer):
        """A fresh copy, so each weight draws its own values."""
        return keras.initializers.get(keras.initializers.serialize(initializer))

    def build_projections(self, feature_dims, width, **dense_kwargs):
        """Create `self.projections`: one `Dense(width)` per modality.

        A `kernel_initializer` in `dense_kwargs` is cloned per modality.
        """
        initializer = dense_kwargs.pop("kernel_initializer", "glorot_uniform")
        self.projections = {}
        for name in self.modalities:
            layer = keras.layers.Dense(
                width,
                kernel_initializer=self.clone_initializer(
                    keras.initializers.get(initializer)
                ),
                dtype=self.dtype_policy,
                name=f"{name}_projection",
                **dense_kwargs,
            )
            layer.build((None, feature_dims[name]))
            self.projections[name] = layer

    def project(self, features, mask):
        """Project every modality; masked rows and absent modalities are 0.

        Returns a list in `self.modalities` order. An absent modality is a
        zero tensor shaped like the first present projection.
        """
        rank = next(len(x.shape) for x in features if x is not None)
        projected = []
        for index, (name, x) in enumerate(zip(self.modalities, features)):
            if x is None:
                projected.append(None)
                continue
            h = self.projections[name](x)
            column = self.mask_column(mask, index, rank)
            projected.append(ops.where(column, h, ops.zeros_like(h)))
        zeros = ops.zeros_like(next(h for h in projected if h is not None))
        return [zeros if h is None else h for h in projected]

    def mean_over_present(self, tensors, mask):
        """`Σ_m tensors[m] / max(Σ_m mask_m, 1)`: the mean over the
        modalities present in each row (masked ones must already be 0);
        a row with nothing present is 0."""
        total = tensors[0]
        for h in tensors[1:]:
            total = total + h
        count = ops.sum(mask, axis=-1)
        count = ops.maximum(count, ops.ones_like(count))
        rank = len(total.shape)
        return total / ops.reshape(count, (-1,) + (1,) * (rank - 1))

    def masked_features(self, features, mask):
        """Features in the compute dtype, masked rows set to 0.

        `ops.where`, not a product: a masked row may hold anything, even
        NaN, and still contributes exactly nothing. An absent modality is a
        zero tensor of its own width, shaped like the present ones.
        """
        first = next(x for x in features if x is not None)
        rank = len(first.shape)
        masked = []
        for index, (name, x) in enumerate(zip(self.modalities, features)):
            if x is None:
                width = (self.feature_dims[name],)
                masked.append(
                    ops.zeros(ops.shape(first)[:-1] + width, self.compute_dtype)
                )
                continue
            x = ops.cast(x, self.compute_dtype)
            column = self.mask_column(mask, index, rank)
            masked.append(ops.where(column, x, ops.zeros_like(x)))
        return masked

    def check_aligned_steps(self):
        """Raise unless sequence modalities share one static `steps`."""
        if next(iter(self.feature_ranks.values())) != 3:
            return
        known = {s for s in self._steps.values() if s is not None}
        if len(known) > 1:
            raise ValueError(
                f"{self.__class__.__name__} fuses sequences step by step: "
                "every modality needs the same number of steps. Received "
                f"steps {self._steps}."
            )

    def mask_column(self, mask, index, rank):
        """Mask column `index` as a bool tensor broadcastable to `rank`."""
        column = ops.cast(mask[:, index], "bool")
        return ops.reshape(column, (-1,) + (1,) * (rank - 1))

    def get_config(self):
        config = super().get_config()
        config.update({"modalities": self.modalities})
        return config
