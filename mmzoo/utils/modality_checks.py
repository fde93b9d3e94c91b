"""Checks shared by every boundary that takes a dict of modalities: the
fusion layers, `MultimodalBackbone` and `MultimodalPreprocessor`."""

MODALITY_MASK = "modality_mask"


def present_modalities(inputs, modalities, owner, takes_mask=True):
    """Validate the keys of a modality dict and list the modalities present.

    Args:
        inputs: the dict a user passed.
        modalities: the known modality names, in mask-column order.
        owner: the name of the layer or model, for error messages.
        takes_mask: whether a `"modality_mask"` key is allowed.

    Returns:
        The names of the modalities present (not `None`), in order.

    Raises:
        ValueError: `inputs` is not a dict, has an unknown key, or holds no
            known modality.
    """
    extra = f" (and '{MODALITY_MASK}')" if takes_mask else ""
    if not isinstance(inputs, dict):
        raise ValueError(
            f"{owner} expects a dict {{modality_name: values}} with keys "
            f"among {modalities}{extra}. Received: {type(inputs)}"
        )
    known = set(modalities) | ({MODALITY_MASK} if takes_mask else set())
    unknown = sorted(set(inputs) - known)
    if unknown:
        raise ValueError(
            f"{owner} got unknown modality {unknown}. Expected keys among "
            f"{modalities}{extra}."
        )
    present = [m for m in modalities if inputs.get(m) is not None]
    if not present:
        raise ValueError(
            f"{owner} got no known modality. Expected at least one of "
            f"{modalities}. Received keys: {sorted(inputs)}"
        )
    return present


def check_mask_shape(shape, modalities):
    """Raise unless `shape` is `(batch, len(modalities))`."""
    shape = tuple(shape)
    if len(shape) != 2 or shape[-1] != len(modalities):
        raise ValueError(
            f"'{MODALITY_MASK}' must have shape (batch, {len(modalities)}), "
            f"one 0/1 column per modality in {modalities}. Received shape "
            f"{shape}."
        )
