import keras


def mmzoo_export(path):
    """Register a class with Keras under the `mmzoo` package.

    `path` is the public name (e.g. `"mmzoo.layers.ProjectionFusion"`). It is
    kept on the class as `_mmzoo_path` for documentation; the class is
    registered as `mmzoo>ClassName` so saved configs and presets rebuild it.
    """

    def decorator(cls):
        cls._mmzoo_path = path
        return keras.saving.register_keras_serializable(package="mmzoo")(cls)

    return decorator
