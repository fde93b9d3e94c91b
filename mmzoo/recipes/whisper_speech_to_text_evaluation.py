"""Whisper base speech-to-text on real recorded prompts, against faster-whisper.

```
# faster-whisper's outputs, once (they do not depend on the Keras backend):
python -m mmzoo.recipes.whisper_speech_to_text_evaluation --reference
# mmzoo's, on each backend:
KERAS_BACKEND=jax python -m mmzoo.recipes.whisper_speech_to_text_evaluation \\
    --backend-run
KERAS_BACKEND=torch python -m mmzoo.recipes.whisper_speech_to_text_evaluation \\
    --backend-run
KERAS_BACKEND=tensorflow \\
    python -m mmzoo.recipes.whisper_speech_to_text_evaluation --backend-run
# A quick check, both sides in one run: 4 prompts per language and direction.
python -m mmzoo.recipes.whisper_speech_to_text_evaluation --limit 4
```

Without `--reference` or `--backend-run` a run computes faster-whisper's
outputs for the clips its saved outputs lack, then mmzoo's on the current
backend (`KERAS_BACKEND`).

Data: the Asterisk voice prompts of `mmzoo.datasets.load_voice_prompts`
(EVALUATION ONLY), transcribed in English, Spanish and Italian and translated
from Spanish and Italian into English (`task="translate"`, the prompts whose
name has an English transcript). The spoken language is given, not detected.
Clips longer than one 30 s window (3 English, 5 Spanish, 1 Italian) are
decoded in consecutive windows, as `WhisperAudioToText.generate` does (each
window's features computed on its own samples, where faster-whisper computes
them over the whole recording). `--languages` picks the spoken languages;
`--limit N` keeps the first N prompts (by name) of each language and
direction.

A run can be stopped and started again: the outputs are saved after every
batch, and a run computes only the clips its output file lacks, when the file
was made with the same system, versions and settings (else it starts again,
keeping the old file as `*.replaced.json`).

mmzoo: `WhisperAudioToText` (`build_model`) greedy, in batches of
`--batch-size` windows sorted by length. faster-whisper, the reference: the
same CTranslate2 weights (`whisper_base_multi`'s packages) in float32, greedy
(`beam_size=1`), temperature 0 only (no fallback), no timestamps, no previous
text, no VAD, no silence rule (`no_speech_threshold=None`: mmzoo has none,
and it would drop a window's text), the same prompt (`<|startoftranscript|>
<|language|> <|task|> <|notimestamps|>`); the settings of
`tests/test_whisper_audio_to_text.py::
test_real_english_speech_token_identical_to_faster_whisper`.

Outputs, in `--output` (default: `<mmzoo cache>/evaluations/
whisper_speech_to_text_evaluation[_limitN]`, see
`mmzoo.utils.file_cache.cache_dir`): `outputs_faster_whisper.json` and
`outputs_<backend>.json` (per clip: name, text, token ids; no reference
text), and `results_<backend>.json` (per clip: name, reference, both texts
and token ids, token-identical or not; and the summary). The project's own
outputs, those of the README's table, are kept in
`benchmarks/whisper_speech_to_text_evaluation/` (`--output` that folder to
check them or resume them). Printed: per language
and direction, the number of clips, the share of clips whose text tokens are
identical to faster-whisper's, corpus WER (transcription) or BLEU and chrF
(translation) of both after `mmzoo.metrics.normalize_text`, every clip that
differs, and Markdown table rows for the README: one per backend with saved
outputs in the folder, and faster-whisper's.

`--explain` (after a backend's run, on that backend) says where each
differing clip parts from faster-whisper's tokens: mmzoo's decoder,
teacher-forced on the tokens both share, and its logits for the two
tokens at the first that differs (saved in `explanations_<backend>.json`).
"""

import argparse
import datetime
import importlib.metadata
import json
import os
import time

from mmzoo import metrics
from mmzoo.utils import file_cache

NAME = "whisper_speech_to_text_evaluation"
PRESET = "whisper_base_speech_to_text"
LANGUAGES = ("en", "es", "it")
SAMPLE_RATE = 16000
WINDOW_SAMPLES = 30 * SAMPLE_RATE
REFERENCE = "faster_whisper"
# faster-whisper's transcribe settings of the reference (language and task
# are given per direction).
REFERENCE_SETTINGS = {
    "beam_size": 1,
    "temperature": 0,
    "without_timestamps": True,
    "condition_on_previous_text": False,
    "vad_filter": False,
    "no_speech_threshold": None,
}
# Settings that do not change the outputs, so a run with other values
# resumes the saved ones.
UNTRACKED_SETTINGS = ("batch_size", "cpu_threads")
# faster-whisper: outputs saved every this many clips.
REFERENCE_CHECKPOINT = 8
TABLE_DIRECTIONS = ("en", "es", "it", "es-en", "it-en")


# --- Directions and clips ----------------------------------------------------


def directions(languages=LANGUAGES):
    """The evaluated directions: each language transcribed, and the
    non-English ones translated into English (`"es-en"`)."""
    out = list(languages)
    out += [f"{language}-en" for language in languages if language != "en"]
    return out


def direction_task(direction):
    """`(spoken language, task, target language or None)` of a direction."""
    language, _, target = direction.partition("-")
    if target:
        return language, "translate", target
    return language, "transcribe", None


def is_translation(direction):
    return direction_task(direction)[1] == "translate"


def label(direction):
    """`"es→en"` for `"es-en"`."""
    return direction.replace("-", "→")


def reference_texts(direction):
    """`{name: reference text}` of every clip of a direction: the
    transcripts, or the English ones of a translation direction."""
    clips, _ = select_clips(direction)
    return {clip["name"]: clip["reference"] for clip in clips}


def select_clips(direction, limit=None):
    """The clips of a direction: a list of `{"name", "reference", "audio"}`,
    by name, and the names of those longer than one window."""
    from mmzoo.datasets.voice_prompts import load_voice_prompts

    language, _, target = direction_task(direction)
    data = load_voice_prompts(
        language, translate_to=target, sample_rate=SAMPLE_RATE
    )
    references = data["translations"] if target else data["transcripts"]
    clips = [
        {"name": str(name), "reference": str(reference), "audio": audio}
        for name, reference, audio in zip(
            data["names"], references, data["audio"]
        )
    ][:limit]
    long = [c["name"] for c in clips if len(c["audio"]) > WINDOW_SAMPLES]
    return clips, long


# --- The two systems --------------------------------------------------------


def build_model():
    """mmzoo's Whisper base `WhisperAudioToText` and where it came from: the
    `whisper_base_speech_to_text` preset when it is registered, else built
    from the `whisper_base_multi` backbone, converter and tokenizer."""
    import mmzoo

    if PRESET in mmzoo.list_presets():
        model = mmzoo.models.WhisperAudioToText.from_preset(PRESET)
        return model, f"preset {PRESET}"
    backbone = mmzoo.models.WhisperBackbone.from_preset("whisper_base_multi")
    preprocessor = mmzoo.models.WhisperAudioToTextPreprocessor(
        mmzoo.layers.WhisperAudioConverter(),
        mmzoo.models.WhisperTokenizer(pretrained_weights="whisper_base_multi"),
    )
    model = mmzoo.models.WhisperAudioToText(backbone, preprocessor)
    return model, "whisper_base_multi backbone, converter and tokenizer"


def mmzoo_outputs(
    model, clips, language, task, batch_size=16, checkpoint=None
):
    """mmzoo's greedy outputs: `{name: {"text", "token_ids", "windows"}}`.

    Each clip is cut into windows (`audio_windows`, as `generate` does);
    the windows of all clips go in batches sorted by length (similar output
    lengths, so a batch stops early). A clip's text is its windows' texts
    joined with one space, its token ids theirs one after the other: the
    text tokens, no prompt, end or other special token. `checkpoint`, if
    given, is called with the clips done so far after every batch.
    """
    import keras

    from mmzoo.models.whisper.whisper_audio_to_text import join_window_texts

    preprocessor = model.preprocessor
    windows = []
    for clip in clips:
        pieces = preprocessor.audio_windows([clip["audio"]])[0]
        for index, piece in enumerate(pieces):
            windows.append((clip["name"], index, len(pieces), piece))
    windows.sort(key=lambda window: len(window[3]))
    progbar = keras.utils.Progbar(len(windows), unit_name="window")
    parts, outputs = {}, {}
    for start in range(0, len(windows), batch_size):
        batch = windows[start : start + batch_size]
        token_ids = model.generate_windows(
            [window[3] for window in batch], language=language, task=task
        )
        texts = preprocessor.detokenize_text(token_ids)
        for (name, index, count, _), text, ids in zip(batch, texts, token_ids):
            parts.setdefault(name, {})[index] = (text, ids)
            if len(parts[name]) == count:
                by_index = parts.pop(name)
                done = [by_index[i] for i in range(count)]
                outputs[name] = {
                    "text": join_window_texts(t for t, _ in done),
                    "token_ids": [i for _, ids in done for i in ids],
                    "windows": count,
                }
        progbar.add(len(batch))
        if checkpoint is not None:
            checkpoint(outputs)
    return outputs


def divergence(model, audio, language, task, ours, theirs):
    """Where mmzoo's greedy tokens part from faster-whisper's, and why.

    Teacher-forces mmzoo's decoder on the prompt and the tokens both systems
    share, and reads its logits for the two tokens at the first step that
    differs (the end token where one output is a prefix of the other). A
    gap near 0 is a near-tie that float rounding decides, not a different
    rule or model.

    Args:
        model: a `WhisperAudioToText`.
        audio: the clip, one window (at most 30 s) at 16 kHz.
        language, task: the prompt's.
        ours, theirs: mmzoo's and faster-whisper's text token ids.

    Returns:
        `{"step", "mmzoo_token", "faster_whisper_token", "mmzoo_logit",
        "faster_whisper_logit", "gap", "top_gap"}`: the step (0 = first text
        token), both tokens as text, mmzoo's logits for both, their
        difference, and mmzoo's margin between its two best tokens there.
    """
    import numpy as np
    from keras import ops

    from mmzoo.models.whisper.whisper_audio_to_text_preprocessor import (
        PROMPT_LENGTH,
    )

    preprocessor = model.preprocessor
    tokenizer = preprocessor.tokenizer
    end = int(tokenizer.eos_token_id)
    step = next(
        (i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b),
        min(len(ours), len(theirs)),
    )
    mine = int(ours[step]) if step < len(ours) else end
    other = int(theirs[step]) if step < len(theirs) else end
    # One position past the shared tokens (unread: attention is causal).
    x = preprocessor.generate_preprocess(
        [audio],
        sequence_length=PROMPT_LENGTH + step + 1,
        language=language,
        task=task,
    )
    x["decoder_token_ids"][0, PROMPT_LENGTH : PROMPT_LENGTH + step] = ours[
        :step
    ]
    x["decoder_padding_mask"][0, :] = True
    logits = ops.convert_to_numpy(model(x))[0, PROMPT_LENGTH + step - 1]
    logits = logits.astype("float64")
    top = np.sort(logits)[-2:]

    def text(token):
        if token == end:
            return "<|endoftext|>"
        return str(tokenizer.detokenize([token]))

    return {
        "step": step,
        "mmzoo_token": text(mine),
        REFERENCE + "_token": text(other),
        "mmzoo_logit": float(logits[mine]),
        REFERENCE + "_logit": float(logits[other]),
        "gap": float(logits[mine] - logits[other]),
        "top_gap": float(top[1] - top[0]),
    }


def explain(output, chosen, clips_by_direction):
    """Explains every clip where the current backend's outputs differ from
    faster-whisper's (`divergence`; a clip of several windows is put down
    to its features, computed per window here and over the whole recording
    by faster-whisper). Prints one line per clip; saves
    `explanations_<backend>.json`."""
    import keras

    backend = keras.config.backend()
    saved = read_outputs(outputs_path(output, backend))["directions"]
    reference = read_outputs(outputs_path(output, REFERENCE))["directions"]
    model, _ = build_model()
    explanations = {}
    for direction in chosen:
        if direction not in saved or direction not in reference:
            continue
        language, task, _ = direction_task(direction)
        clips = clips_by_direction[direction]
        rows = compare(
            saved[direction]["clips"],
            reference[direction]["clips"],
            {c["name"]: c["reference"] for c in clips},
        )
        audio = {c["name"]: c["audio"] for c in clips}
        found = {}
        for row in rows:
            if row["token_identical"]:
                continue
            name = row["name"]
            if len(audio[name]) > WINDOW_SAMPLES:
                found[name] = {"reason": "several windows"}
                line = "several windows: features per window"
            else:
                found[name] = divergence(
                    model,
                    audio[name],
                    language,
                    task,
                    row["mmzoo"]["token_ids"],
                    row[REFERENCE]["token_ids"],
                )
                d = found[name]
                line = (
                    f"step {d['step']}: mmzoo {d['mmzoo_token']!r} "
                    f"({d['mmzoo_logit']:.3f}), faster-whisper "
                    f"{d[REFERENCE + '_token']!r} "
                    f"({d[REFERENCE + '_logit']:.3f}): gap {d['gap']:.4f}"
                )
            print(f"{label(direction)} {name}: {line}")
        explanations[direction] = found
    write_json(
        os.path.join(output, f"explanations_{backend}.json"), explanations
    )


def faster_whisper_model(directory, cpu_threads=0):
    from faster_whisper import WhisperModel

    return WhisperModel(
        directory,
        device="cpu",
        compute_type="float32",
        cpu_threads=cpu_threads,
    )


def faster_whisper_outputs(model, clips, language, task, checkpoint=None):
    """faster-whisper's outputs: `{name: {"text", "token_ids",
    "segments"}}` (one segment per window of the clip). `checkpoint`, if
    given, is called with the clips done so far every
    `REFERENCE_CHECKPOINT` clips and at the end."""
    import keras

    progbar = keras.utils.Progbar(len(clips), unit_name="clip")
    outputs = {}
    for count, clip in enumerate(clips, 1):
        segments, _ = model.transcribe(
            clip["audio"], language=language, task=task, **REFERENCE_SETTINGS
        )
        segments = list(segments)
        outputs[clip["name"]] = {
            "text": "".join(s.text for s in segments).strip(),
            "token_ids": [int(t) for s in segments for t in s.tokens],
            "segments": len(segments),
        }
        progbar.add(1)
        if checkpoint is not None and (
            count % REFERENCE_CHECKPOINT == 0 or count == len(clips)
        ):
            checkpoint(outputs)
    return outputs


def identity(header):
    """What must match for saved outputs to be resumed: the header without
    the settings that do not change the outputs."""
    settings = {
        key: value
        for key, value in header.get("settings", {}).items()
        if key not in UNTRACKED_SETTINGS
    }
    return dict(
        {k: v for k, v in header.items() if k != "directions"},
        settings=settings,
    )


def resumable(path, header):
    """The saved outputs at `path` if they were made as `header` says, else
    a new record (the old file kept as `*.replaced.json`)."""
    saved = read_outputs(path)
    if saved["directions"] and identity(saved) != identity(header):
        replaced = path[: -len(".json")] + ".replaced.json"
        os.replace(path, replaced)
        print(
            f"{path} was made with other settings: starting again (the old "
            f"outputs are in {replaced})"
        )
        saved = {"directions": {}}
    saved.update(header)
    return saved


def run_system(clips_by_direction, outputs_function, path, header):
    """Runs `outputs_function(clips, language, task, checkpoint)` on the
    clips of each direction that `path` lacks, saving to `path` as it goes.

    The record: the header and `{"directions": {direction: {"clips": {name:
    {"text", "token_ids", ...}}, "complete", "seconds",
    "seconds_per_clip", "date"}}}`; `seconds` adds up the runs' times on the
    clips they computed. No reference text: the records hold only what the
    systems wrote (`reference_texts` reads the references from the data).
    """
    saved = resumable(path, header)
    for direction, clips in clips_by_direction.items():
        if not clips:
            continue
        language, task, _ = direction_task(direction)
        names = {clip["name"] for clip in clips}
        entry = saved["directions"].setdefault(direction, {"clips": {}})
        # (Older records also held each clip's reference text.)
        done = {
            name: {k: v for k, v in output.items() if k != "reference"}
            for name, output in entry["clips"].items()
            if name in names
        }
        todo = [clip for clip in clips if clip["name"] not in done]
        print(
            f"{label(direction)} ({task}), {len(clips)} clips"
            + (f", {len(done)} saved before" if done else "")
        )
        # (Records older than `clips_timed` timed all their clips.)
        timed = entry.get("clips_timed", len(entry["clips"]))
        seconds = entry.get("seconds", 0.0)
        start = time.perf_counter()

        def checkpoint(outputs):
            elapsed = seconds + time.perf_counter() - start
            entry["clips"] = dict(done, **outputs)
            entry["complete"] = len(entry["clips"]) == len(clips)
            entry["clips_timed"] = timed + len(outputs)
            entry["seconds"] = round(elapsed, 1)
            entry["seconds_per_clip"] = round(
                elapsed / max(1, entry["clips_timed"]), 3
            )
            entry["date"] = datetime.date.today().isoformat()
            write_outputs(path, saved)

        if todo:
            outputs_function(todo, language, task, checkpoint)
        else:
            checkpoint({})
    return saved


# --- Comparison and scores (pure Python) ------------------------------------


def compare(mmzoo_clips, reference_clips, references):
    """Per-clip rows for the clips both systems have, by name.

    Args:
        mmzoo_clips, reference_clips: `{name: {"text", "token_ids"}}`,
            mmzoo's and faster-whisper's outputs.
        references: `{name: reference text}`; clips without one are left
            out.

    Returns:
        A list of `{"name", "reference", "mmzoo", "faster_whisper",
        "token_identical"}`, the two systems' `{"text", "token_ids"}`.
    """
    rows = []
    shared = set(mmzoo_clips) & set(reference_clips) & set(references)
    for name in sorted(shared):
        ours, theirs = mmzoo_clips[name], reference_clips[name]
        rows.append(
            {
                "name": name,
                "reference": references[name],
                "mmzoo": {
                    "text": ours["text"],
                    "token_ids": list(ours["token_ids"]),
                },
                REFERENCE: {
                    "text": theirs["text"],
                    "token_ids": list(theirs["token_ids"]),
                },
                "token_identical": list(ours["token_ids"])
                == list(theirs["token_ids"]),
            }
        )
    return rows


def score(direction, references, hypotheses):
    """`{"wer": fraction}` for a transcription, `{"bleu", "chrf"}` (0-100)
    for a translation, after `mmzoo.metrics.normalize_text`."""
    if is_translation(direction):
        return {
            "bleu": metrics.bleu(references, hypotheses),
            "chrf": metrics.chrf(references, hypotheses),
        }
    return {"wer": metrics.word_error_rate(references, hypotheses)}


def summarize(direction, rows):
    """Clips, % token-identical, both systems' scores and the differing
    clips of one direction's `compare` rows."""
    if not rows:
        return {"clips": 0}
    references = [row["reference"] for row in rows]
    identical = sum(row["token_identical"] for row in rows)
    return {
        "clips": len(rows),
        "token_identical_clips": identical,
        "token_identical_percent": 100.0 * identical / len(rows),
        "mmzoo": score(
            direction, references, [row["mmzoo"]["text"] for row in rows]
        ),
        REFERENCE: score(
            direction, references, [row[REFERENCE]["text"] for row in rows]
        ),
        "differing": [
            row["name"] for row in rows if not row["token_identical"]
        ],
        "names": [row["name"] for row in rows],
    }


def format_score(values):
    """`"WER 12.3 %"` or `"BLEU 45.6, chrF 67.8"`."""
    if "wer" in values:
        return f"WER {100 * values['wer']:.1f} %"
    return f"BLEU {values['bleu']:.1f}, chrF {values['chrf']:.1f}"


def report(direction, summary, rows, backend):
    """Printable lines for one direction: counts, scores, differing clips."""
    _, task, _ = direction_task(direction)
    if not summary.get("clips"):
        return [f"{label(direction)} ({task}): no clips in common"]
    lines = [
        f"{label(direction)} ({task}): {summary['clips']} clips, "
        f"{summary['token_identical_percent']:.1f} % token-identical to "
        f"faster-whisper ({summary['token_identical_clips']}/"
        f"{summary['clips']})",
        f"  mmzoo ({backend}): {format_score(summary['mmzoo'])}",
        f"  faster-whisper: {format_score(summary[REFERENCE])}",
    ]
    by_name = {row["name"]: row for row in rows}
    for name in summary["differing"]:
        row = by_name[name]
        ours, theirs = row["mmzoo"], row[REFERENCE]
        lines.append(f"  differs: {name}")
        lines.append(f"    mmzoo:          {ours['text']!r}")
        lines.append(f"    faster-whisper: {theirs['text']!r}")
        if ours["text"] == theirs["text"]:
            lines.append(f"    mmzoo ids:          {ours['token_ids']}")
            lines.append(f"    faster-whisper ids: {theirs['token_ids']}")
    return lines


def table_rows(summaries, reference_scores):
    """Markdown rows for the README.

    Args:
        summaries: `{backend: {direction: summarize(...)}}`.
        reference_scores: `{direction: score(...)}` of faster-whisper.

    Returns:
        The header, the separator, a row per backend and faster-whisper's
        row, as strings. `—` where a direction was not run.
    """

    def cell(values):
        if not values:
            return "—"
        if "wer" in values:
            return f"{100 * values['wer']:.1f}"
        return f"{values['bleu']:.1f} / {values['chrf']:.1f}"

    header = (
        "| Outputs | WER en (%) | WER es (%) | WER it (%) "
        "| BLEU / chrF es→en | BLEU / chrF it→en | Token-identical (%) |"
    )
    lines = [header, "|" + "---|" * 7]
    for backend, by_direction in summaries.items():
        cells = [
            cell(by_direction.get(direction, {}).get("mmzoo"))
            for direction in TABLE_DIRECTIONS
        ]
        clips = sum(s.get("clips", 0) for s in by_direction.values())
        identical = sum(
            s.get("token_identical_clips", 0) for s in by_direction.values()
        )
        share = f"{100 * identical / clips:.1f}" if clips else "—"
        lines.append(f"| mmzoo, {backend} | {' | '.join(cells)} | {share} |")
    cells = [cell(reference_scores.get(d)) for d in TABLE_DIRECTIONS]
    lines.append(f"| faster-whisper | {' | '.join(cells)} | reference |")
    return lines


# --- Files ------------------------------------------------------------------


def default_output(limit=None):
    suffix = "" if limit is None else f"_limit{limit}"
    return os.path.join(file_cache.cache_dir("evaluations"), NAME + suffix)


def read_outputs(path):
    if not os.path.isfile(path):
        return {"directions": {}}
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def write_json(path, content):
    """Writes `content` as JSON atomically (a temporary file, then
    `os.replace`)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(content, f, ensure_ascii=False, indent=1)
    os.replace(temporary, path)


def write_outputs(path, content):
    """Writes a system's outputs as `write_json` does, one line per clip
    (the file stays small and its changes readable)."""
    lines = {}
    compact = {k: v for k, v in content.items() if k != "directions"}
    compact["directions"] = {}
    for direction, entry in content["directions"].items():
        clips = {}
        for name, clip in entry["clips"].items():
            marker = f"@clip{len(lines)}@"
            lines[json.dumps(marker)] = json.dumps(clip, ensure_ascii=False)
            clips[name] = marker
        compact["directions"][direction] = dict(entry, clips=clips)
    text = json.dumps(compact, ensure_ascii=False, indent=1)
    for marker, line in lines.items():
        text = text.replace(marker, line, 1)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    os.replace(temporary, path)


def outputs_path(output, system):
    return os.path.join(output, f"outputs_{system}.json")


def versions(*packages):
    return {name: importlib.metadata.version(name) for name in packages}


def backends_saved(output):
    """Backends with saved mmzoo outputs in `output`, in a fixed order."""
    found = []
    for backend in ("jax", "torch", "tensorflow"):
        if os.path.isfile(outputs_path(output, backend)):
            found.append(backend)
    return found


# --- Main -------------------------------------------------------------------


def run_reference(clips_by_direction, output, cpu_threads):
    from mmzoo.recipes.whisper_base_multi import ctranslate2_model_dir

    print("faster-whisper (reference)")
    header = {
        "system": "faster-whisper",
        "versions": versions("faster-whisper", "ctranslate2"),
        "settings": dict(
            REFERENCE_SETTINGS, compute_type="float32", cpu_threads=cpu_threads
        ),
        "model": "whisper_base_multi's CTranslate2 packages",
    }
    with ctranslate2_model_dir() as directory:
        model = faster_whisper_model(directory, cpu_threads)

        def outputs(clips, language, task, checkpoint):
            return faster_whisper_outputs(
                model, clips, language, task, checkpoint
            )

        return run_system(
            clips_by_direction,
            outputs,
            outputs_path(output, REFERENCE),
            header,
        )


def run_backend(clips_by_direction, output, batch_size):
    import keras

    backend = keras.config.backend()
    model, source = build_model()
    print(f"mmzoo on {backend} ({source})")
    header = {
        "system": "mmzoo",
        "backend": backend,
        "model": source,
        "versions": versions("keras", "keras-hub", backend),
        "settings": {"sampler": "greedy", "batch_size": batch_size},
    }

    def outputs(clips, language, task, checkpoint):
        return mmzoo_outputs(
            model, clips, language, task, batch_size, checkpoint
        )

    return run_system(
        clips_by_direction, outputs, outputs_path(output, backend), header
    )


def missing_reference(clips_by_direction, output):
    """The directions whose clips the saved reference outputs lack."""
    saved = read_outputs(outputs_path(output, REFERENCE))["directions"]
    return {
        direction: clips
        for direction, clips in clips_by_direction.items()
        if not {c["name"] for c in clips}
        <= set(saved.get(direction, {}).get("clips", {}))
    }


def results(output, chosen, backend=None, references=None):
    """Prints the comparison of `backend` (if given) on the `chosen`
    directions and the table of every backend saved; saves
    `results_<backend>.json`.

    `references`: `{direction: {name: reference text}}`; the directions it
    lacks are read by `reference_texts`.
    """
    references = dict(references or {})
    reference = read_outputs(outputs_path(output, REFERENCE))["directions"]
    for direction in TABLE_DIRECTIONS:
        if direction in reference and direction not in references:
            references[direction] = reference_texts(direction)
    summaries = {}
    for name in backends_saved(output):
        saved = read_outputs(outputs_path(output, name))["directions"]
        summaries[name] = {}
        per_clip = {}
        for direction in TABLE_DIRECTIONS:
            if direction not in saved:
                continue
            if direction not in reference:
                if name == backend and direction in chosen:
                    print(
                        f"{label(direction)}: no faster-whisper outputs to "
                        "compare with: run with --reference first"
                    )
                continue
            rows = compare(
                saved[direction]["clips"],
                reference[direction]["clips"],
                references[direction],
            )
            summary = summarize(direction, rows)
            summaries[name][direction] = summary
            per_clip[direction] = rows
            if name == backend and direction in chosen:
                print("\n".join(report(direction, summary, rows, name)))
                for system, entry in (
                    (name, saved[direction]),
                    ("faster-whisper", reference[direction]),
                ):
                    if entry.get("complete") is False:
                        print(
                            f"  incomplete: {system} has "
                            f"{len(entry['clips'])} clips saved; run again "
                            "to finish"
                        )
                seconds = saved[direction]["seconds_per_clip"]
                theirs = reference[direction]["seconds_per_clip"]
                print(
                    f"  seconds per clip: mmzoo {seconds}, faster-whisper "
                    f"{theirs}"
                )
        if name == backend:
            write_json(
                os.path.join(output, f"results_{name}.json"),
                {"summary": summaries[name], "clips": per_clip},
            )
    # faster-whisper's row: on the clips the backends' rows were scored on
    # (all its saved clips when no backend has the direction).
    reference_scores, reference_counts = {}, {}
    for direction in TABLE_DIRECTIONS:
        clips = reference.get(direction, {}).get("clips")
        if clips:
            scored = [
                set(by_direction[direction].get("names", ()))
                for by_direction in summaries.values()
                if direction in by_direction
            ]
            names = sorted(
                set.intersection(*scored)
                if scored
                else set(clips) & set(references[direction])
            )
            if any(shared != set(names) for shared in scored):
                print(
                    f"Note: the backends' {label(direction)} rows are on "
                    "different clips; faster-whisper's is on those they share"
                )
            if not names:
                continue
            reference_scores[direction] = score(
                direction,
                [references[direction][n] for n in names],
                [clips[n]["text"] for n in names],
            )
            reference_counts[direction] = len(names)
    if backend is None:
        for direction in chosen:
            if direction in reference_scores:
                count = reference_counts[direction]
                print(
                    f"{label(direction)}: faster-whisper on {count} clips: "
                    f"{format_score(reference_scores[direction])}"
                )
    print("\nREADME rows:")
    print("\n".join(table_rows(summaries, reference_scores)))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--languages", nargs="+", choices=LANGUAGES, default=list(LANGUAGES)
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="first N prompts of each language and direction",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=1,
        help=(
            "mmzoo's windows per batch (1 was the fastest per clip on 2 CPU "
            "cores on every backend: benchmarks/whisper_generate.py)"
        ),
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--reference",
        action="store_true",
        help="faster-whisper's outputs only (run once)",
    )
    mode.add_argument(
        "--backend-run",
        action="store_true",
        help="mmzoo's outputs on the current backend only",
    )
    parser.add_argument(
        "--cpu-threads",
        type=int,
        default=0,
        help="faster-whisper's threads (0: CTranslate2's default)",
    )
    mode.add_argument(
        "--explain",
        action="store_true",
        help=(
            "explain each clip whose saved outputs on the current backend "
            "differ from faster-whisper's (mmzoo's logits for both tokens "
            "where they part)"
        ),
    )
    parser.add_argument("--output", default=None)
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    output = args.output or default_output(args.limit)
    chosen = directions(args.languages)
    clips_by_direction = {}
    for direction in chosen:
        clips, long = select_clips(direction, args.limit)
        clips_by_direction[direction] = clips
        if long:
            print(
                f"{label(direction)}: longer than 30 s, decoded in windows: "
                f"{', '.join(long)}"
            )
    if args.explain:
        explain(output, chosen, clips_by_direction)
        return
    if args.reference:
        run_reference(clips_by_direction, output, args.cpu_threads)
    elif not args.backend_run:
        missing = missing_reference(clips_by_direction, output)
        if missing:
            run_reference(missing, output, args.cpu_threads)
    backend = None
    if not args.reference:
        import keras

        backend = keras.config.backend()
        run_backend(clips_by_direction, output, args.batch_size)
    print(f"\nOutputs in {output}")
    references = {
        direction: {c["name"]: c["reference"] for c in clips}
        for direction, clips in clips_by_direction.items()
    }
    results(output, chosen, backend, references)


if __name__ == "__main__":
    main()
