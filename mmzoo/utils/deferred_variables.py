"""Build a model without computing initial values its preset replaces.

Building a model computes every weight's initial value: on JAX each
random initialiser of a new shape is an XLA compile (about 0.1 s on a
2-core CPU: 2 of the 2.2 s `av_digits_attention` took to load), and on
TensorFlow and PyTorch Whisper base's 74 M random values take about a
second, all for values the preset overwrites at once. Inside
`keras.StatelessScope(initialize_variables=False)` Keras creates variables
without values ("deferred"); the preset's weights are then loaded inside
another stateless scope, which collects the assignments instead of making
them, and each deferred variable is given its loaded value, or its initial
value if the preset did not hold it.

Keras has no public call for this (its own `initialize_all_variables`
refuses a variable already assigned, and TensorFlow and PyTorch variables
cannot be assigned before they hold a value), so this module uses Keras'
private list of deferred variables (`keras.src.backend.common.global_state`,
attribute `"uninitialized_variables"`) and `Variable._initialize` /
`_deferred_initialize`, the calls Keras itself makes for deferred
variables: checked by `tests/test_presets.py` on every backend.
"""

import contextlib

import keras
from keras.src.backend.common import global_state
from keras.src.backend.common.stateless_scope import in_stateless_scope

_REGISTRY = "uninitialized_variables"


def _pending():
    return global_state.get_global_attribute(_REGISTRY, None) or []


def _can_defer():
    # Not inside another stateless scope, nor under a distribution
    # (variables get their layout when they get a value), nor with Flax
    # NNX variables.
    return (
        not in_stateless_scope()
        and keras.distribution.distribution() is None
        and not keras.config.is_nnx_enabled()
    )


class _Created:
    """The variables created, without values, in a `deferring()` block."""

    def __init__(self):
        self.variables = []

    def load(self, model, load_fn):
        """Run `load_fn()` (which assigns `model`'s weights), then give
        every deferred variable its loaded or its initial value."""
        if not self.variables:
            load_fn()
            return
        with keras.StatelessScope(initialize_variables=False) as scope:
            load_fn()
        deferred = {id(v) for v in self.variables}
        for variable in self.variables:
            value = scope.get_current_value(variable)
            if value is not None:
                variable._initialize(value)
            else:
                variable._deferred_initialize()
        # Variables made before the block (none in a preset's model) get
        # their assignments as usual.
        for variable in model.variables:
            value = scope.get_current_value(variable)
            if id(variable) not in deferred and value is not None:
                variable.assign(value)
        self.variables = []
        if keras.config.backend() == "torch":
            # A layer's `torch.nn.Parameter`s, if already listed, were
            # read before the variables had values: list them again.
            for layer in model._flatten_layers(include_self=True):
                if hasattr(layer, "_torch_params"):
                    layer._track_variables()


@contextlib.contextmanager
def deferring():
    """Build inside the block; load with `created.load(model, fn)` after.

    Variables created in the block have no value until `load` gives them
    the value `fn` assigns, or their initial value. Until then, reading
    one computes its initialiser each time. Inside another stateless scope
    or under a distribution, variables are created as usual and `load`
    just runs `fn`.

    Example:
    ```python
    with deferring() as created:
        model = keras.Sequential([keras.layers.Dense(4)])
        model.build((None, 3))
    created.load(model, lambda: model.load_weights("model.weights.h5"))
    ```
    """
    if not _can_defer():
        yield _Created()
        return
    start = len(_pending())
    created = _Created()
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield created
    finally:
        # Take this block's variables out of Keras' list: Keras would
        # refuse to initialise the ones loaded by then. (After an error
        # the half-built model is dropped with them.)
        pending = _pending()
        created.variables = pending[start:]
        global_state.set_global_attribute(_REGISTRY, pending[:start])
