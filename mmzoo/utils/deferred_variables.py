"""Build a model without computing initial values its preset replaces.

On JAX every random initialiser of a new weight shape is compiled by XLA
(about 0.1 s each on a 2-core CPU): building `av_digits_attention` to load
its preset spent 2 of its 2.2 s there, on values the preset overwrites at
once. Inside `keras.StatelessScope(initialize_variables=False)` Keras
creates variables without values ("deferred"); the preset's weights are
then assigned, and only the variables the preset did not hold get their
initial values.

Keras has no public call to finish deferred variables one model at a time
(its own `initialize_all_variables` refuses a variable already assigned),
so this module reads Keras' list of deferred variables
(`keras.src.backend.common.global_state`, attribute
`"uninitialized_variables"`) and calls `Variable._deferred_initialize`: both
private, checked by `tests/test_presets.py` on every backend.
"""

import contextlib

import keras
from keras.src.backend.common import global_state
from keras.src.backend.common.stateless_scope import in_stateless_scope

_REGISTRY = "uninitialized_variables"


def _pending():
    return global_state.get_global_attribute(_REGISTRY, None) or []


def _can_defer():
    # Only JAX pays for initialisers (compiled); TensorFlow and PyTorch
    # variables cannot be assigned before they hold a value. Not inside
    # another stateless scope, nor with a distribution (variables get
    # their layout when initialised), nor with Flax NNX variables.
    return (
        keras.config.backend() == "jax"
        and not in_stateless_scope()
        and keras.distribution.distribution() is None
        and not keras.config.is_nnx_enabled()
    )


class _Created:
    """The variables created, without values, in a `deferring()` block."""

    def __init__(self, start):
        self._start = start
        self.variables = []

    def finish(self):
        """Give every variable still without a value its initial value."""
        for variable in self.variables:
            if variable._value is None:
                variable._deferred_initialize()
        self.variables = []


@contextlib.contextmanager
def deferring():
    """Create variables without values; call `.finish()` after loading.

    Yields an object whose `finish()` initialises the variables created in
    the block that are still without a value (call it after assigning the
    preset's weights, outside the block: inside, assignments only go to
    the scope). Until then, reading such a variable computes its
    initialiser each time. On backends other than JAX (or inside a
    stateless scope, under a distribution) variables are created as usual
    and `finish()` does nothing.

    Example:
    ```python
    with deferring() as created:
        model = keras.Sequential([keras.layers.Dense(4)])
        model.build((None, 3))
    model.load_weights("model.weights.h5")
    created.finish()
    ```
    """
    if not _can_defer():
        created = _Created(None)
        yield created
        return
    start = len(_pending())
    created = _Created(start)
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield created
    finally:
        # Take this block's variables out of Keras' list: Keras would
        # refuse to initialise the ones assigned by then. (After an error
        # the half-built model is dropped with them.)
        pending = _pending()
        created.variables = pending[start:]
        global_state.set_global_attribute(_REGISTRY, pending[:start])
