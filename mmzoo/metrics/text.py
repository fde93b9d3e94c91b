"""Scoring transcripts and translations: WER, BLEU and chrF.

Every score here first passes the references and hypotheses through one
normalisation, `normalize_text`, so that casing, Unicode forms, punctuation
and spacing do not count as errors, while words and their accents do.
"""

import unicodedata


def normalize_text(text):
    """The one text normalisation of mmzoo's text scores.

    In order: Unicode NFKC (compatibility forms folded: "ﬁ" -> "fi",
    full-width letters -> ASCII, accents composed), lower-case
    (`str.lower`), every punctuation character (Unicode category `P*`:
    `. , ! ? ' " - … « »` and so on) replaced by a space, and runs of
    whitespace collapsed to one space, none at either end. Accents are kept
    ("Trés" -> "trés"). Unicode counts `# * @ % & /` as punctuation too
    (removed); other symbols (`$ + = < >`, category `S*`) and numerals are
    kept as they are: nothing is spelled out ("2" is not "two"). An
    apostrophe splits words ("l'arrivo" -> "l arrivo"), the same way in
    references and hypotheses.

    Args:
        text: str.

    Returns:
        The normalised str.

    Example:
    ```python
    normalize_text("Hello,   World!")  # 'hello world'
    normalize_text("¿Qué TAL?")  # 'qué tal'
    ```
    """
    if not isinstance(text, str):
        raise ValueError(
            f"Expected a str to normalise. Received: {type(text).__name__} "
            f"{text!r}"
        )
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(
        " " if unicodedata.category(c).startswith("P") else c for c in text
    )
    return " ".join(text.split())


def word_error_rate(references, hypotheses):
    """Corpus word error rate after `normalize_text`, with `jiwer`.

    `(substitutions + deletions + insertions) / reference words`, summed
    over all pairs (not a mean of per-sentence rates), as a fraction: one
    wrong word in four is `0.25`. It can exceed 1 when the hypotheses
    insert words.

    Args:
        references: a str or a list of str, the true transcripts.
        hypotheses: a str or a list of str of the same length.

    Returns:
        float.

    Raises:
        ValueError: on different numbers of references and hypotheses, no
            pairs, or a reference with no words after normalisation.
        ImportError: when `jiwer` is not installed.

    Example:
    ```python
    word_error_rate(["the cat sat down"], ["the cat sat up"])  # 0.25
    word_error_rate("Hello, World!", "hello world")  # 0.0
    ```
    """
    references, hypotheses = _normalised_pairs(references, hypotheses)
    empty = [i for i, r in enumerate(references) if not r]
    if empty:
        raise ValueError(
            "Every reference needs at least one word after normalisation; "
            f"these do not: {empty[:10]}"
        )
    jiwer = _require("jiwer")
    return float(jiwer.wer(references, hypotheses))


def bleu(references, hypotheses):
    """Corpus BLEU (0-100) after `normalize_text`, with `sacrebleu`.

    `sacrebleu.corpus_bleu` with one reference per hypothesis and its
    defaults (4-grams, exponential smoothing, the `13a` tokeniser, which
    after the normalisation only splits symbols such as `$` or `+` off
    their words).

    Args:
        references: a str or a list of str, the reference translations.
        hypotheses: a str or a list of str of the same length.

    Returns:
        float, between 0 and 100.

    Raises:
        ValueError: on different numbers of references and hypotheses, or
            no pairs.
        ImportError: when `sacrebleu` is not installed.

    Example:
    ```python
    bleu(["The cat sat on the mat."], ["the cat sat on the mat"])  # 100.0
    ```
    """
    references, hypotheses = _normalised_pairs(references, hypotheses)
    sacrebleu = _require("sacrebleu")
    return float(sacrebleu.corpus_bleu(hypotheses, [references]).score)


def chrf(references, hypotheses):
    """Corpus chrF (0-100) after `normalize_text`, with `sacrebleu`.

    `sacrebleu.corpus_chrf` with one reference per hypothesis and its
    defaults (character 6-grams, beta 2, no word n-grams: chrF, not
    chrF++). Gentler than BLEU on short sentences and on inflections.

    Args:
        references: a str or a list of str, the reference translations.
        hypotheses: a str or a list of str of the same length.

    Returns:
        float, between 0 and 100.

    Raises:
        ValueError: on different numbers of references and hypotheses, or
            no pairs.
        ImportError: when `sacrebleu` is not installed.

    Example:
    ```python
    chrf(["Goodbye!"], ["goodbye"])  # 100.0
    ```
    """
    references, hypotheses = _normalised_pairs(references, hypotheses)
    sacrebleu = _require("sacrebleu")
    return float(sacrebleu.corpus_chrf(hypotheses, [references]).score)


def _normalised_pairs(references, hypotheses):
    references = [references] if isinstance(references, str) else references
    hypotheses = [hypotheses] if isinstance(hypotheses, str) else hypotheses
    references, hypotheses = list(references), list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(
            f"Got {len(references)} references and {len(hypotheses)} "
            "hypotheses; expected one hypothesis per reference."
        )
    if not references:
        raise ValueError("Got no references and hypotheses to score.")
    return (
        [normalize_text(r) for r in references],
        [normalize_text(h) for h in hypotheses],
    )


def _require(name):
    try:
        return __import__(name)
    except ImportError as e:
        raise ImportError(
            f"This score needs the `{name}` package: `pip install {name}` "
            "(or `pip install mmzoo[metrics]`)."
        ) from e
