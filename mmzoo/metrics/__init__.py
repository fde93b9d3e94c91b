"""Scores of model outputs: word error rate, BLEU and chrF of text."""

from mmzoo.metrics.text import bleu
from mmzoo.metrics.text import chrf
from mmzoo.metrics.text import normalize_text
from mmzoo.metrics.text import word_error_rate

__all__ = [
    "bleu",
    "chrf",
    "normalize_text",
    "word_error_rate",
]
