"""Classic text-classification baselines, for comparison with mmzoo's presets.

`python -m mmzoo.recipes.text_baselines` prints the TF-IDF + logistic
regression accuracy on the fine-food reviews.
"""

import numpy as np

# The values of `C` tried by the cross-validation, and its number of folds.
C_GRID = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0)
CV_FOLDS = 5
_FEATURES = "TF-IDF, word 1-2 grams, sublinear tf, min_df 2"
_INSTALL_HINT = "pip install scikit-learn  (or: pip install mmzoo[data])"


def tfidf_logistic_regression(
    train_texts, train_labels, test_texts, test_labels, seed=0, C=None
):
    """TF-IDF features and a logistic regression, tuned on training data only.

    Word uni- and bigrams seen in at least 2 training texts, with sublinear
    term frequency, feed an L2-regularised logistic regression. Unless `C`
    is given, its regularisation strength is the value of `C_GRID` with the
    best mean accuracy over `CV_FOLDS` stratified folds (in order, not
    shuffled) of the training set; the vectoriser is refitted on each
    fold's training part, so the held-out fold stays unseen. The test set
    is only used for the final accuracy.

    Args:
        train_texts: sequence of `str`, the training texts.
        train_labels: integer class labels of the training texts.
        test_texts: sequence of `str`, the test texts.
        test_labels: integer class labels of the test texts.
        seed: int. Seed of the logistic regression. Defaults to `0`.
        C: optional float. Inverse regularisation strength to use instead of
            cross-validating one. Defaults to `None`.

    Returns:
        A dict `{"accuracy": float, "settings": dict}`: the test accuracy,
        and the features, classifier, `C`, how `C` was chosen and its mean
        cross-validation accuracy (`None` when `C` was given).

    Raises:
        ImportError: if scikit-learn is not installed.
        ValueError: if texts and labels differ in length.

    Example:
    ```python
    (x_train, y_train), (x_test, y_test) = mmzoo.datasets.load_fine_foods()
    result = tfidf_logistic_regression(x_train, y_train, x_test, y_test)
    result["accuracy"]  # 0.804
    ```
    """
    try:
        from sklearn.model_selection import StratifiedKFold
        from threadpoolctl import threadpool_limits
    except ImportError as e:
        raise ImportError(
            f"The TF-IDF baseline needs scikit-learn: {_INSTALL_HINT}."
        ) from e
    train_texts = [str(t) for t in train_texts]
    test_texts = [str(t) for t in test_texts]
    train_labels = np.asarray(train_labels)
    test_labels = np.asarray(test_labels)
    for name, texts, labels in (
        ("train", train_texts, train_labels),
        ("test", test_texts, test_labels),
    ):
        if labels.shape != (len(texts),):
            raise ValueError(
                f"{len(texts)} {name} texts but {name} labels of shape "
                f"{labels.shape}."
            )

    # One BLAS thread: these fits are small, and on a busy machine threaded
    # BLAS made each one ~30x slower (3 min instead of 6 s for the search).
    with threadpool_limits(limits=1, user_api="blas"):
        cv_accuracy = None
        if C is None:
            folds = StratifiedKFold(n_splits=CV_FOLDS).split(
                train_texts, train_labels
            )
            scores = np.zeros((CV_FOLDS, len(C_GRID)))
            for i, (fit_idx, val_idx) in enumerate(folds):
                vectorizer = _vectorizer()
                x_fit = vectorizer.fit_transform(
                    [train_texts[j] for j in fit_idx]
                )
                x_val = vectorizer.transform([train_texts[j] for j in val_idx])
                for k, c in enumerate(C_GRID):
                    model = _classifier(c, seed).fit(
                        x_fit, train_labels[fit_idx]
                    )
                    scores[i, k] = np.mean(
                        model.predict(x_val) == train_labels[val_idx]
                    )
            mean_scores = scores.mean(axis=0)
            best = int(np.argmax(mean_scores))  # ties: the smaller C
            C, cv_accuracy = C_GRID[best], float(mean_scores[best])
            chosen_by = f"{CV_FOLDS}-fold cross-validation on the training set"
        else:
            chosen_by = "given"
        vectorizer = _vectorizer()
        model = _classifier(C, seed).fit(
            vectorizer.fit_transform(train_texts), train_labels
        )
        predicted = model.predict(vectorizer.transform(test_texts))
    return {
        "accuracy": float(np.mean(predicted == test_labels)),
        "settings": {
            "features": _FEATURES,
            "classifier": "logistic regression",
            "C": C,
            "C_chosen_by": chosen_by,
            "cv_accuracy": cv_accuracy,
        },
    }


def _vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)


def _classifier(C, seed):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=2000, random_state=seed)


def main():
    from mmzoo.datasets import load_fine_foods

    (x_train, y_train), (x_test, y_test) = load_fine_foods()
    result = tfidf_logistic_regression(x_train, y_train, x_test, y_test)
    print(f"TF-IDF + logistic regression: {result['accuracy']:.4f}")
    print(result["settings"])


if __name__ == "__main__":
    main()
