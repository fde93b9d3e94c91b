import json
import re

import keras_hub

from mmzoo.api_export import mmzoo_export
from mmzoo.models.whisper.whisper_backbone import WhisperBackbone
from mmzoo.presets import presets_holding
from mmzoo.utils.pretrained_packages import AssetsFromPackage
from mmzoo.utils.pretrained_packages import package_dir
from mmzoo.utils.traced_tokenize import TokenizeTracedOnce

# Whisper's language tokens are its only added tokens of 2-3 letters
# (`<|en|>`, `<|haw|>`); the others are words (`<|transcribe|>`).
_LANGUAGE_TOKEN = re.compile(r"<\|[a-z]{2,3}\|>")


def read_tokenizer_json(path):
    """keras-hub's `WhisperTokenizer` arguments from a `tokenizer.json`.

    Reads the byte-level BPE vocabulary and merges and the added tokens of a
    Hugging Face `tokenizer.json` (the file CTranslate2 and faster-whisper
    ship with Whisper) and splits the added tokens into language tokens
    (`<|en|>`, `<|fr|>`, ...) and the other special tokens.

    Returns:
        A dict with `vocabulary`, `merges`, `special_tokens` and
        `language_tokens`.
    """
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    model = data.get("model", {})
    if model.get("type") != "BPE" or "vocab" not in model:
        raise ValueError(
            f"{path} is not a byte-level BPE tokenizer.json (model type "
            f"{model.get('type')!r}); Whisper's tokenizer is one."
        )
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    special_tokens, language_tokens = {}, {}
    for token in data.get("added_tokens", []):
        content, index = token["content"], int(token["id"])
        if _LANGUAGE_TOKEN.fullmatch(content):
            language_tokens[content] = index
        else:
            special_tokens[content] = index
    return {
        "vocabulary": dict(model["vocab"]),
        "merges": merges,
        "special_tokens": special_tokens,
        "language_tokens": language_tokens,
    }


@mmzoo_export("mmzoo.models.WhisperTokenizer")
class WhisperTokenizer(
    TokenizeTracedOnce, AssetsFromPackage, keras_hub.models.WhisperTokenizer
):
    """keras-hub's `WhisperTokenizer`, read from a pretrained package.

    The byte-level BPE tokenizer of Whisper (keras-hub's, unchanged), with
    its vocabulary, merges, special and language tokens taken from the
    `tokenizer.json` of an installed package (`pretrained_weights`), so a
    preset stores no copy of them.

    Args:
        vocabulary, merges, special_tokens, language_tokens: as for
            `keras_hub.models.WhisperTokenizer`; leave them `None` to read
            them from `pretrained_weights`.
        pretrained_weights: string or `None`. A pretrained package (see
            `mmzoo.utils.pretrained_packages`) with a `tokenizer.json`.

    Example:
    ```python
    tokenizer = mmzoo.models.WhisperTokenizer(
        pretrained_weights="whisper_base_multi"
    )
    tokenizer(" Seven.")  # [14868, 13]
    tokenizer.language_tokens["<|fr|>"]  # 50265
    ```
    """

    backbone_cls = WhisperBackbone
    # The Whisper presets with a tokenizer.
    presets = presets_holding("tokenizer.json")

    def __init__(
        self,
        vocabulary=None,
        merges=None,
        special_tokens=None,
        language_tokens=None,
        pretrained_weights=None,
        **kwargs,
    ):
        if pretrained_weights is not None and vocabulary is None:
            read = read_tokenizer_json(
                package_dir(pretrained_weights) / "tokenizer.json"
            )
            vocabulary, merges = read["vocabulary"], read["merges"]
            special_tokens = special_tokens or read["special_tokens"]
            language_tokens = language_tokens or read["language_tokens"]
        super().__init__(
            vocabulary=vocabulary,
            merges=merges,
            special_tokens=special_tokens,
            language_tokens=language_tokens,
            **kwargs,
        )
        self.pretrained_weights = pretrained_weights

    def language_token_id(self, language):
        """The id of `<|language|>`, e.g. `language_token_id("fr")`."""
        token = f"<|{language}|>"
        if not self.language_tokens or token not in self.language_tokens:
            known = sorted(self.language_tokens or {})
            raise ValueError(
                f"Unknown Whisper language {language!r}: the tokenizer has "
                f"no {token}. Known: {[t[2:-2] for t in known]}."
            )
        return self.language_tokens[token]

    def special_token_id(self, token):
        """The id of a special token, e.g. `"<|transcribe|>"`."""
        if token not in self._special_token_dict:
            raise ValueError(
                f"The tokenizer has no special token {token!r}. Known: "
                f"{sorted(self._special_token_dict)}."
            )
        return self._special_token_dict[token]

    def get_config(self):
        config = super().get_config()
        config["pretrained_weights"] = self.pretrained_weights
        if self.pretrained_weights is not None:
            # Read from the package again when loaded.
            config["special_tokens"] = None
            config["language_tokens"] = None
        return config
