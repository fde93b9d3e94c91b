"""`mmzoo.utils.xla_cpu`: JAX training steps compiled with XLA:CPU's
convolutions in Eigen rather than YNNPACK."""

import keras
import numpy as np
import pytest
from helpers import raw_batch
from helpers import tiny_classifier
from helpers import to_numpy

from mmzoo.utils import xla_cpu

pytestmark = pytest.mark.skipif(
    keras.config.backend() != "jax", reason="JAX's trainer only"
)


def _train_one_step(seed=0):
    keras.utils.set_random_seed(seed)
    task = tiny_classifier()
    task.compile(
        optimizer=keras.optimizers.SGD(0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=True,
    )
    x, y = raw_batch(8)
    task.train_on_batch(x, y)
    return task


def test_options_take_convolutions_from_ynnpack():
    """The installed jaxlib takes the options, and with them a
    convolution's compiled program has no YNNPACK fusion, which it has
    without them (if a jaxlib stops sending convolutions to YNNPACK, this
    fails, and the mixin can go)."""
    import jax
    from jax import lax

    assert xla_cpu.supported_options() == xla_cpu.OPTIONS

    def loss(x, kernel):
        layout = ("NHWC", "HWIO", "NHWC")
        y = lax.conv_general_dilated(
            x, kernel, (1, 1), "SAME", dimension_numbers=layout
        )
        return (y * y).sum()

    step = jax.grad(loss, argnums=(0, 1))
    x = np.ones((4, 12, 10, 32), "float32")
    kernel = np.ones((3, 3, 32, 64), "float32")
    default = jax.jit(step).lower(x, kernel).compile().as_text()
    chosen = jax.jit(step, compiler_options=xla_cpu.OPTIONS)
    chosen = chosen.lower(x, kernel).compile().as_text()
    assert "__ynn_fusion" in default
    assert "__ynn_fusion" not in chosen
    assert "convolution" in chosen


def test_task_compiles_training_step_with_options(monkeypatch):
    """`MultimodalTask.make_train_function` jits with the options (and
    only the training step), and leaves Keras' `jit` as it was."""
    from keras.src.backend.jax import trainer

    seen = []
    keras_jit = trainer.jit

    def recording_jit(fn, **kwargs):
        seen.append(kwargs.get("compiler_options"))
        return keras_jit(fn, **kwargs)

    monkeypatch.setattr(trainer, "jit", recording_jit)
    task = _train_one_step()
    task.predict_on_batch(raw_batch(2)[0])
    assert trainer.jit is recording_jit
    assert seen == [xla_cpu.OPTIONS, None]  # training, then prediction


def test_training_with_options_equals_training_without(monkeypatch):
    """One SGD step moves every weight the same with and without the
    options (another convolution kernel: float32 rounding apart)."""
    with_options = _train_one_step()
    monkeypatch.setattr(xla_cpu, "supported_options", lambda: None)
    without = _train_one_step()
    for a, b in zip(with_options.weights, without.weights):
        np.testing.assert_allclose(
            to_numpy(a), to_numpy(b), atol=1e-5, err_msg=a.path
        )


def test_refused_options_leave_keras_step(monkeypatch):
    """A jaxlib that refuses the option (an experimental flag) gets
    Keras' training step, and training works."""
    monkeypatch.setattr(
        xla_cpu, "OPTIONS", {"xla_cpu_no_such_option_anywhere": "1"}
    )
    xla_cpu.supported_options.cache_clear()
    try:
        assert xla_cpu.supported_options() is None
        task = _train_one_step()
        assert np.isfinite(to_numpy(task.weights[0])).all()
    finally:
        xla_cpu.supported_options.cache_clear()
