"""Scores of model outputs: word error rate, BLEU and chrF of text, and
robustness curves (accuracy as a modality is corrupted, MultiBench's)."""

from mmzoo.metrics.robustness import CORRUPTIONS
from mmzoo.metrics.robustness import corrupt
from mmzoo.metrics.robustness import effective_robustness
from mmzoo.metrics.robustness import relative_robustness
from mmzoo.metrics.robustness import robustness_curve
from mmzoo.metrics.text import bleu
from mmzoo.metrics.text import chrf
from mmzoo.metrics.text import normalize_text
from mmzoo.metrics.text import word_error_rate

__all__ = [
    "CORRUPTIONS",
    "bleu",
    "chrf",
    "corrupt",
    "effective_robustness",
    "normalize_text",
    "relative_robustness",
    "robustness_curve",
    "word_error_rate",
]
