"""Checks shared by every boundary that takes a dict of modalities: the
fusion layers, `MultimodalBackbone` and `MultimodalPreprocessor`."""

import numpy as np

MODALITY_MASK = "modality_mask"


def dict_form(modalities):
    """`{'image': ..., 'audio': ...}`: the dict a user should pass."""
    return "{" + ", ".join(f"'{m}': ..." for m in modalities) + "}"


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
    if isinstance(inputs, (list, tuple)):
        raise ValueError(
            f"{owner} takes a dict keyed by modality, "
            f"{dict_form(modalities)}, not a {type(inputs).__name__} of "
            f"{len(inputs)} items."
        )
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


def check_mask_values(mask, modalities, present=None, owner="modality_mask"):
    """Check concrete `"modality_mask"` values; return them as int32.

    Every value must be 0 or 1 (bool, int or float), and every row must
    leave at least one modality present, counting only the modalities in
    `present` (those whose key was given).

    Args:
        mask: a numpy array `(batch, len(modalities))`.
        modalities: the modality names, in mask-column order.
        present: the names of the modalities given, or `None` for all.
        owner: the name of the caller, for error messages.

    Returns:
        The mask as an int32 numpy array.

    Raises:
        ValueError: a non-numeric mask, a value other than 0/1, or a row
            with no modality present.

    Example:
    ```python
    check_mask_values(np.array([[1, 0]]), ["image", "audio"])  # [[1, 0]]
    check_mask_values(np.array([[0.5, 1]]), ["image", "audio"])  # error
    ```
    """
    mask = np.asarray(mask)
    check_mask_shape(mask.shape, modalities)
    if mask.dtype.kind not in "biuf":
        raise ValueError(
            f"{owner}: '{MODALITY_MASK}' must hold 0/1 (bool or int). "
            f"Received dtype {mask.dtype}."
        )
    bad = ~np.isin(mask, (0, 1))
    if bad.any():
        rows = sorted(set(np.nonzero(bad)[0].tolist()))
        values = np.unique(mask[bad])[:5].tolist()
        raise ValueError(
            f"{owner}: '{MODALITY_MASK}' must hold only 0 (missing) or 1 "
            f"(present), one column per modality in {modalities}. Received "
            f"values {values} at rows {rows[:10]}."
        )
    mask = mask.astype("int32")
    if present is not None:
        mask = mask * np.array(
            [[1 if m in present else 0 for m in modalities]], "int32"
        )
    empty = np.nonzero(mask.sum(axis=1) == 0)[0].tolist()
    if empty:
        given = modalities if present is None else present
        raise ValueError(
            f"{owner}: rows {empty[:10]} of '{MODALITY_MASK}' leave no "
            f"modality present (columns {modalities}, inputs given: "
            f"{list(given)}). Every row needs at least one modality; drop "
            "those rows."
        )
    return mask
