"""Classic text-classification baselines, for comparison with mmzoo's presets.

`python -m mmzoo.recipes.text_baselines` prints the TF-IDF + logistic
regression accuracy on the fine-food reviews.
"""

import numpy as np


def tfidf_logistic_regression(
    train_texts, train_labels, test_texts, test_labels, seed=0, C=None
):
    """TF-IDF features and a logistic regression, tuned on training data only.

    Word uni- and bigrams with sublinear term frequency; the regularisation
    strength `C` is picked by 5-fold cross-validation on the training set
    unless given.

    Returns:
        `{"accuracy": test accuracy, "settings": {...}}`.
    """
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.model_selection import GridSearchCV
        from sklearn.pipeline import make_pipeline
    except ImportError as e:
        raise ImportError(
            "The TF-IDF baseline needs scikit-learn: `pip install "
            "scikit-learn` (or `pip install mmzoo[data]`)."
        ) from e
    pipeline = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2),
        LogisticRegression(max_iter=2000, random_state=seed),
    )
    if C is None:
        search = GridSearchCV(
            pipeline,
            {"logisticregression__C": [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]},
            cv=5,
        )
    else:
        search = pipeline.set_params(logisticregression__C=C)
    search.fit(list(train_texts), np.asarray(train_labels))
    predicted = search.predict(list(test_texts))
    chosen = C
    if C is None:
        chosen = search.best_params_["logisticregression__C"]
    return {
        "accuracy": float(np.mean(predicted == np.asarray(test_labels))),
        "settings": {
            "features": "TF-IDF, word 1-2 grams, sublinear tf, min_df 2",
            "classifier": "logistic regression",
            "C": chosen,
            "C_chosen_by": "given"
            if C is not None
            else "5-fold cross-validation on the training set",
        },
    }


def main():
    from mmzoo.datasets import load_fine_foods

    (x_train, y_train), (x_test, y_test) = load_fine_foods()
    result = tfidf_logistic_regression(x_train, y_train, x_test, y_test)
    print(f"TF-IDF + logistic regression: {result['accuracy']:.4f}")
    print(result["settings"])


if __name__ == "__main__":
    main()
