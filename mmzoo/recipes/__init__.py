"""Training recipes that reproduce mmzoo's shipped presets."""


def keep_best_epoch(model, epochs, train_epoch, validate, label="epoch"):
    """Train `epochs` epochs, keeping the weights of the best one.

    Args:
        model: the Keras model trained (its weights are restored to the
            best epoch's at the end).
        epochs: int, how many epochs.
        train_epoch: `train_epoch()` trains one epoch.
        validate: `validate()` returns the validation score (higher is
            better) as a float.
        label: what the printed progress lines start with.

    Returns:
        `(history, best_epoch)`: the score after each epoch (rounded to 4
        digits) and the 1-based number of the best one.
    """
    best, best_epoch, best_weights, history = -float("inf"), 0, None, []
    for epoch in range(epochs):
        train_epoch()
        score = validate()
        history.append(round(score, 4))
        print(f"{label} {epoch + 1}: validation accuracy {score:.4f}")
        if score > best:
            best, best_epoch = score, epoch + 1
            best_weights = model.get_weights()
    model.set_weights(best_weights)
    return history, best_epoch
