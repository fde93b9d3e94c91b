"""The Whisper speech-to-text evaluation recipe's pure-Python parts."""

import pytest

from mmzoo.recipes import whisper_speech_to_text_evaluation as evaluation


def clip(text, token_ids):
    return {"text": text, "token_ids": token_ids}


@pytest.mark.one_backend  # no model: backend-independent
def test_summary_and_table_on_hand_made_outputs():
    assert evaluation.directions(["en", "es"]) == ["en", "es", "es-en"]
    assert evaluation.direction_task("it-en") == ("it", "translate", "en")
    references = {
        "en": {"a": "The cat sat down.", "b": "Goodbye!", "c": "Hello."},
        "es-en": {"d": "The cat sat on the mat."},
    }
    mmzoo = {
        "en": {
            "a": clip("the cat sat up", [1, 2, 3]),
            "b": clip("Goodbye.", [5]),
            # Not in faster-whisper's outputs: left out of the comparison.
            "c": clip("Hello.", [6]),
        },
        "es-en": {"d": clip("the cat sat on the mat", [7])},
    }
    reference = {
        "en": {
            "a": clip("The cat sat down.", [1, 2, 4]),
            "b": clip("Goodbye.", [5]),
            # No reference text: left out.
            "e": clip("Hi.", [8]),
        },
        "es-en": {"d": clip("", [])},
    }
    mmzoo["en"]["e"] = clip("Hi.", [8])
    rows, summaries = {}, {}
    for direction in ("en", "es-en"):
        rows[direction] = evaluation.compare(
            mmzoo[direction], reference[direction], references[direction]
        )
        summaries[direction] = evaluation.summarize(direction, rows[direction])
    en, es_en = summaries["en"], summaries["es-en"]
    assert en["clips"] == 2
    assert en["token_identical_percent"] == 50.0
    assert en["differing"] == ["a"]
    # One word wrong of five (normalised: "goodbye" is right).
    assert en["mmzoo"]["wer"] == pytest.approx(0.2)
    assert en["faster_whisper"]["wer"] == 0.0
    assert es_en["mmzoo"] == pytest.approx({"bleu": 100.0, "chrf": 100.0})
    assert es_en["faster_whisper"] == {"bleu": 0.0, "chrf": 0.0}
    assert es_en["token_identical_percent"] == 0.0
    lines = evaluation.report("en", en, rows["en"], backend="torch")
    assert "2 clips, 50.0 % token-identical" in lines[0]
    assert "  differs: a" in lines
    table = evaluation.table_rows(
        {"torch": summaries},
        {"en": en["faster_whisper"], "es-en": es_en["faster_whisper"]},
    )
    assert table[2] == (
        "| mmzoo, torch | 20.0 | — | — | 100.0 / 100.0 | — | 33.3 |"
    )
    assert table[3] == (
        "| faster-whisper | 0.0 | — | — | 0.0 / 0.0 | — | reference |"
    )


@pytest.mark.one_backend  # no model: backend-independent
def test_run_system_resumes_saved_clips_and_restarts_on_other_settings(
    tmp_path,
):
    path = str(tmp_path / "outputs_fake.json")
    header = {"system": "fake", "settings": {"beam": 1, "batch_size": 4}}
    clips = {
        "en": [
            {"name": name, "reference": name.upper(), "audio": None}
            for name in ("a", "b", "c")
        ]
    }
    calls = []

    def outputs(todo, language, task, checkpoint, stop_after=None):
        calls.append([clip["name"] for clip in todo])
        done = {}
        for clip in todo:
            done[clip["name"]] = {"text": clip["name"], "token_ids": [1]}
            checkpoint(done)
            if len(done) == stop_after:
                raise KeyboardInterrupt
        return done

    def interrupted(*args):
        return outputs(*args, stop_after=2)

    # A run stopped after two clips has saved them, not complete.
    with pytest.raises(KeyboardInterrupt):
        evaluation.run_system(clips, interrupted, path, header)
    saved = evaluation.read_outputs(path)["directions"]["en"]
    assert sorted(saved["clips"]) == ["a", "b"]
    assert saved["complete"] is False
    # The next run (another batch size: same outputs) does only "c".
    resumed_header = {
        "system": "fake",
        "settings": {"beam": 1, "batch_size": 8},
    }
    saved = evaluation.run_system(clips, outputs, path, resumed_header)
    assert calls[-1] == ["c"]
    entry = saved["directions"]["en"]
    assert entry["complete"] is True
    assert entry["clips_timed"] == 3
    # Only what the system wrote is saved, not the reference text.
    assert entry["clips"]["c"] == {"text": "c", "token_ids": [1]}
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    assert '    "c": {"text": "c", "token_ids": [1]}' in lines
    # Nothing left: nothing run.
    evaluation.run_system(clips, outputs, path, resumed_header)
    assert len(calls) == 2
    # Other settings: the saved outputs are set aside, all clips run again.
    other = {"system": "fake", "settings": {"beam": 5, "batch_size": 8}}
    evaluation.run_system(clips, outputs, path, other)
    assert calls[-1] == ["a", "b", "c"]
    replaced = evaluation.read_outputs(
        str(tmp_path / "outputs_fake.replaced.json")
    )
    assert replaced["settings"]["beam"] == 1
    assert evaluation.read_outputs(path)["settings"]["beam"] == 5
