"""The examples: each `# %%` script and its notebook hold the same cells
(jupytext), and the quick ones run as notebooks (nbclient), pictures
included."""

import glob
import os
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = sorted(glob.glob(os.path.join(ROOT, "examples", "*.py")))

EXECUTE = """
import sys
import nbclient, nbformat
notebook = nbformat.read(sys.argv[1], as_version=4)
nbclient.NotebookClient(
    notebook, timeout=600, kernel_name="python3", resources={
        "metadata": {"path": sys.argv[2]}
    }
).execute()
for cell in notebook.cells:
    for output in cell.get("outputs", []):
        if output.get("name") == "stdout":
            print(output["text"], end="")
"""


def cells(notebook):
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


@pytest.mark.one_backend  # no model: backend-independent
@pytest.mark.parametrize("script", EXAMPLES, ids=os.path.basename)
def test_notebook_and_script_hold_the_same_cells(script):
    jupytext = pytest.importorskip("jupytext")
    nbformat = pytest.importorskip("nbformat")
    notebook_path = script[: -len(".py")] + ".ipynb"
    assert os.path.exists(notebook_path), (
        f"{notebook_path} is missing: `jupytext --to ipynb {script}`"
    )
    notebook = nbformat.read(notebook_path, as_version=4)
    assert cells(notebook) == cells(jupytext.read(script)), (
        f"{notebook_path} and {script} differ: `jupytext --sync {script}`"
    )
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    # Notebooks are kept without outputs: the scripts are the source.
    assert all(not cell.get("outputs") for cell in notebook.cells)


def execute(name, tmp_path, env=None):
    pytest.importorskip("nbclient")
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            EXECUTE,
            os.path.join(ROOT, "examples", f"{name}.ipynb"),
            str(tmp_path),
        ],
        env=dict(os.environ, MPLBACKEND="Agg", **(env or {})),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    return result.stdout


# Run once, on the backend that runs them fastest (PyTorch took 89 s and
# 149 s where TensorFlow took 20 s and 16 s).
NOTEBOOK_BACKEND = "tensorflow"
runs_once = pytest.mark.skipif(
    keras.backend.backend() != NOTEBOOK_BACKEND,
    reason=f"the notebooks run once, on {NOTEBOOK_BACKEND}",
)


@pytest.mark.large
@runs_once
def test_quickstart_notebook_runs_and_draws_its_pictures(tmp_path):
    figures = tmp_path / "figures"
    out = execute(
        "quickstart", tmp_path, env={"MMZOO_FIGURES_DIR": str(figures)}
    )
    assert "reloaded preset predicts the same: True" in out
    assert "image+audio  accuracy" in out
    for name in ("subset_accuracy", "modality_weights"):
        png = figures / f"quickstart_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.stat().st_size > 10_000  # a drawn figure, not a blank


@pytest.mark.large
@runs_once
def test_multi_task_notebook_runs(tmp_path):
    out = execute("multi_task", tmp_path)
    assert "reloaded outputs identical: True" in out


@pytest.mark.large
@runs_once
def test_finetune_minilm_notebook_runs(tmp_path):
    out = execute(
        "finetune_minilm", tmp_path, env={"MMZOO_EXAMPLE_SIZE": "tiny"}
    )
    # Three trainings, each reported on the three modality subsets.
    for title in ("frozen MiniLM:", "unfrozen MiniLM:", "LoRA MiniLM:"):
        assert title in out
    # Freezing leaves the encoder out of the trainable weights; LoRA adds
    # a few factors back.
    counts = [
        int(line.split(":")[1])
        for line in out.splitlines()
        if line.startswith("trainable weights:")
    ]
    assert len(counts) == 3 and counts[0] < counts[2] < counts[1], counts
    assert "reloaded predictions identical: True" in out


@pytest.mark.large
@runs_once
def test_speech_translation_notebook_runs(tmp_path):
    out = execute(
        "speech_translation", tmp_path, env={"MMZOO_EXAMPLE_SIZE": "tiny"}
    )
    values = {}
    for line in out.splitlines():
        for key in ("WER:", "BLEU:"):
            if line.startswith(key):
                values[key] = float(line.split(":")[1])
    # Two real Spanish prompts: Whisper base gets most words right.
    assert values["WER:"] < 0.6, out[-3000:]
    assert "BLEU:" in values
    # The prompt written as an 8 kHz WAV is read back, resampled and heard
    # as Spanish.
    assert "at 8000 Hz, language es" in out
    assert "before: held-out loss" in out and "after : held-out loss" in out
