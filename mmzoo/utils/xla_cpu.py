"""XLA:CPU convolutions in Eigen, not YNNPACK, for JAX training steps.

Since jax 0.10, XLA:CPU hands 2D convolutions, and the convolutions of
their gradients, to YNNPACK. On a 2-core AMD EPYC (AVX-512) YNNPACK ran
the AV-digits CNN's convolutions at 145-185 GFLOP/s and their kernel
gradients slower still; XLA's other path (Eigen) ran the same
convolutions 1.5-2× faster, and a training step of `av_digits_attention`
at batch 64 took 128 ms instead of 182 (one process, alternating).
Inference measured no difference, so only training steps change.

`CpuTrainingCompilerOptions`, a mixin for Keras models, compiles the model's
JAX training step with XLA's compiler option
`xla_cpu_experimental_ynn_fusion_type` set to YNNPACK's matrix products
only (`LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT`), leaving convolutions to
Eigen. It is an option of XLA's CPU compiler: GPU and TPU compilations
ignore it. It is experimental, so the mixin first compiles a trivial
function with it and leaves the training step as Keras builds it when
the installed jaxlib refuses the option. The option changes which kernel
runs, not the computation: results agree to float32 rounding. The same
can be had for any JAX program with the environment variable
`XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=-individual_convolution`
set before JAX starts.

Keras builds the step with `jax.jit` inside its JAX trainer; the mixin
gives that build `jax.jit` with the compiler options (Keras' module
attribute `keras.src.backend.jax.trainer.jit`, private API, swapped for
the duration of `make_train_function` and restored). Nothing changes under
Flax NNX (which jits with `nnx.jit`) or on other backends.
"""

import functools

import keras

OPTIONS = {
    "xla_cpu_experimental_ynn_fusion_type": "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT"
}


@functools.cache
def supported_options():
    """`OPTIONS` if the installed jaxlib compiles with them, else `None`."""
    import jax
    import numpy as np

    try:
        jax.jit(lambda x: x + 1, compiler_options=OPTIONS).lower(
            np.float32(0)
        ).compile()
    except Exception:  # an unknown option or value: jaxlib moved on
        return None
    return OPTIONS


class CpuTrainingCompilerOptions:
    """Mixin for Keras models: on JAX, the training step is compiled with
    `OPTIONS` (XLA:CPU convolutions in Eigen): see this module's docstring.

    Example:
    ```python
    class MyTask(CpuTrainingCompilerOptions, keras_hub.models.Task):
        ...
    ```
    """

    def make_train_function(self, force=False):
        options = None
        if keras.config.backend() == "jax":
            from keras.src.backend.jax import trainer

            if not keras.config.is_nnx_enabled() and hasattr(trainer, "jit"):
                options = supported_options()
        if options is None:
            return super().make_train_function(force=force)
        jit = trainer.jit
        trainer.jit = functools.partial(jit, compiler_options=options)
        try:
            return super().make_train_function(force=force)
        finally:
            trainer.jit = jit
