import tensorflow as tf
from keras_hub.models import BertTokenizer
from keras_hub.src.tokenizers.word_piece_tokenizer import CJK_REGEX
from keras_hub.src.tokenizers.word_piece_tokenizer import PUNCTUATION_REGEX

from mmzoo.api_export import mmzoo_export
from mmzoo.models.sentence_encoder.sentence_encoder import SentenceEncoder
from mmzoo.utils.pretrained_packages import AssetsFromPackage
from mmzoo.utils.pretrained_packages import package_dir
from mmzoo.utils.traced_tokenize import TokenizeTracedOnce

# Hugging Face's BERT normalizer (the reference tokenizer of
# sentence-transformers) turns tabs, newlines and Unicode spaces into spaces
# and drops NUL, U+FFFD and the other control and format characters.
_SPACES = r"[\t\n\r\p{Z}]"
_DROPPED = r"[\x00\x{FFFD}\p{Cc}\p{Cf}\p{Co}\p{Cs}]"
_NONSPACING_MARKS = r"\p{Mn}"
# Hugging Face lowercases character by character: a capital sigma becomes
# "σ" even at the end of a word, where ICU's lowercasing gives "ς".
_CAPITAL_SIGMA = "\u03a3"
# Hugging Face maps a word longer than 100 characters to [UNK]; tf-text's
# limit counts bytes. Such words are replaced by a character outside the
# vocabulary (a private-use one; the input's own were dropped above).
_MAX_CHARS_PER_WORD = 100
_SPLIT_KEPT = f"({PUNCTUATION_REGEX}|{CJK_REGEX})"
_UNKNOWN_WORD = "\ue000"


def _read_vocabulary(path):
    with open(path, encoding="utf-8") as f:
        return [line.rstrip("\n") for line in f]


@mmzoo_export("mmzoo.models.SentenceEncoderTokenizer")
class SentenceEncoderTokenizer(
    TokenizeTracedOnce, AssetsFromPackage, BertTokenizer
):
    """WordPiece tokenizer matching Hugging Face's BERT tokenizer exactly.

    keras-hub's `BertTokenizer` lowercases with Unicode case folding and
    keeps accents unless told otherwise, so "café" or "Straße" come out
    differently from the tokenizer the weights were trained with. This
    subclass normalises text the way Hugging Face's `BertTokenizer` does:
    tabs and newlines become spaces; NUL, U+FFFD and control/format
    characters are dropped; with `lowercase=True`, accents are stripped
    (NFD, then non-spacing marks removed) and the text lowercased (Unicode
    lowercase, not case folding: "ß" stays "ß"). Splitting on whitespace,
    punctuation and CJK characters, and WordPiece, are keras-hub's.

    Args:
        vocabulary: list of strings or a vocabulary file, or `None` to take
            the vocabulary of `pretrained_weights`.
        lowercase: bool. Lowercase and strip accents (an uncased model).
        pretrained_weights: string or `None`. A pretrained package (see
            `mmzoo.utils.pretrained_packages`) whose `vocab.txt` is the
            vocabulary; presets then store no copy of it.

    Example:
    ```python
    tokenizer = mmzoo.models.SentenceEncoderTokenizer.from_preset(
        "minilm_l6_en"
    )
    tokenizer(["Café crème", "Straße"])
    ```
    """

    backbone_cls = SentenceEncoder

    def __init__(
        self,
        vocabulary=None,
        lowercase=True,
        pretrained_weights=None,
        **kwargs,
    ):
        strip_accents = kwargs.pop("strip_accents", None)
        if strip_accents not in (None, lowercase):
            raise ValueError(
                "SentenceEncoderTokenizer strips accents exactly when it "
                f"lowercases. Received lowercase={lowercase}, "
                f"strip_accents={strip_accents}."
            )
        if vocabulary is None and pretrained_weights is not None:
            vocabulary = self._package_vocabulary(pretrained_weights)
        # Normalisation is done in `tokenize`; keras-hub only splits.
        super().__init__(
            vocabulary=vocabulary,
            lowercase=False,
            strip_accents=False,
            **kwargs,
        )
        # Always the TensorFlow path, so `tf.data` and eager calls agree.
        self._allow_python_workflow = False
        self.hf_lowercase = lowercase
        self.pretrained_weights = pretrained_weights

    @staticmethod
    def _package_vocabulary(name):
        return _read_vocabulary(package_dir(name) / "vocab.txt")

    def normalize(self, inputs):
        """The text normalisation applied before splitting, as tf ops."""
        import tensorflow_text as tf_text

        inputs = tf.strings.regex_replace(inputs, _SPACES, " ")
        inputs = tf.strings.regex_replace(inputs, _DROPPED, "")
        if self.hf_lowercase:
            inputs = tf_text.normalize_utf8(inputs, "NFD")
            inputs = tf.strings.regex_replace(inputs, _NONSPACING_MARKS, "")
            inputs = tf.strings.regex_replace(inputs, _CAPITAL_SIGMA, "σ")
            inputs = tf.strings.lower(inputs, encoding="utf-8")
        return self._replace_long_words(inputs)

    @staticmethod
    def _replace_long_words(inputs):
        # Punctuation and CJK characters are words of their own, as
        # keras-hub splits them: spaces around them change nothing else.
        words = tf.strings.split(
            tf.strings.regex_replace(inputs, _SPLIT_KEPT, r" \1 ")
        )

        def replace(flat):
            length = tf.strings.length(flat, unit="UTF8_CHAR")
            return tf.where(length > _MAX_CHARS_PER_WORD, _UNKNOWN_WORD, flat)

        words = tf.ragged.map_flat_values(replace, words)
        return tf.strings.reduce_join(words, axis=-1, separator=" ")

    def _set_vocabulary_tf(self):
        import tensorflow_text as tf_text

        # As keras-hub's, but with a byte limit high enough for any word of
        # at most 100 characters (longer ones were replaced in `normalize`).
        self._fast_word_piece = tf_text.FastWordpieceTokenizer(
            vocab=self.vocabulary,
            token_out_type=self.compute_dtype,
            suffix_indicator=self.suffix_indicator,
            unknown_token=self.oov_token,
            max_bytes_per_word=4 * _MAX_CHARS_PER_WORD,
            no_pretokenization=True,
            support_detokenization=True,
        )

    def tokenize(self, inputs):
        if not isinstance(inputs, (tf.Tensor, tf.RaggedTensor)):
            inputs = tf.convert_to_tensor(inputs)
        return super().tokenize(self.normalize(inputs))

    def get_config(self):
        config = super().get_config()
        config.pop("strip_accents", None)
        config.update(
            {
                "lowercase": self.hf_lowercase,
                "pretrained_weights": self.pretrained_weights,
            }
        )
        return config
