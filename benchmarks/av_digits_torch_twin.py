"""A plain-PyTorch twin of the `av_digits_attention` preset.

`KERAS_BACKEND=torch python benchmarks/av_digits_torch_twin.py`

The preset's whole forward pass written by hand with `torch.nn` modules and
`torch.nn.functional`, from what `task.preprocessor` outputs to the logits,
with no Keras in it: the reference of "the fastest plain PyTorch" that
benchmarks compare the Keras model on the PyTorch backend with.

- Image encoder: three blocks of `Conv2d(3×3, "same") + ReLU + MaxPool(2×2,
  "same")` on channels-last planes (28 → 14 → 7 → 4), each of the 16
  positions projected to 128, the 16 × 128 projections flattened and
  projected again to 128.
- Audio encoder: power STFT (periodic Hann window of 256 samples, hop 80,
  centred with reflected edges: 101 frames of 129 bins), the preset's mel
  filterbank (40 bands), dB floored 80 dB below each clip's loudest bin,
  `LayerNorm` over the mel bins of each frame (eps 1e-3, Keras' default),
  the same conv blocks over the (time, mel) plane (101 × 40 → 13 × 5), each
  frame's 5 × 128 features projected to 128, then the mean over frames.
- Attention fusion: each modality's vector projected to 128 (a token),
  zeroed where its `modality_mask` column is 0; a masked softmax of the
  tokens' dot products with a learned query; the weighted sum of tokens.
- Head: `Linear(128, 10)` (logits; dropout is inactive at inference).

Keras' "same" max pooling of an odd size by 2 pads one step at the end only
(TensorFlow's rule); `ceil_mode=True` gives exactly that window without
padding. `build_twin(task)` copies the preset's weights; `check(task)` runs
both on the first test examples and prints the largest logit difference,
with both modalities and with each one missing.
"""

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class ConvBlocks(nn.Module):
    """`[Conv2d 3×3 "same" + ReLU, MaxPool 2×2 "same"]` per width.

    Runs on channels-last tensors (`torch.channels_last` memory format, the
    layout of Keras' feature maps); pooled sizes halve, rounding up.
    """

    def __init__(self, in_channels, filters):
        super().__init__()
        widths = [in_channels] + list(filters)
        self.convs = nn.ModuleList(
            nn.Conv2d(c_in, c_out, 3, padding=1)
            for c_in, c_out in zip(widths[:-1], widths[1:])
        )

    def forward(self, x):
        for conv in self.convs:
            x = torch.relu_(conv(x))
            # A window hanging over the end (odd size) keeps the maximum of
            # its in-range values: Keras' end-padded "same" pooling.
            x = F.max_pool2d(x, 2, 2, ceil_mode=True)
        return x


class ImageEncoder(nn.Module):
    """The `ImageEncoder` with `pooling="flatten"`: `(B, H, W, C)` images
    in `[0, 1]` → `(B, hidden_dim)`."""

    def __init__(self, image_shape, filters, hidden_dim):
        super().__init__()
        height, width, channels = image_shape
        for _ in filters:
            height, width = -(-height // 2), -(-width // 2)
        self.blocks = ConvBlocks(channels, filters)
        self.projection = nn.Linear(filters[-1], hidden_dim)
        self.pooler = nn.Linear(height * width * hidden_dim, hidden_dim)

    def forward(self, images):
        # NHWC memory read as a channels-last NCHW tensor: no copy.
        x = images.permute(0, 3, 1, 2)
        x = x.contiguous(memory_format=torch.channels_last)
        x = self.blocks(x)
        # (B, C, H, W) channels last → (B, H·W, C), positions row-major.
        x = x.permute(0, 2, 3, 1).flatten(1, 2)
        x = self.projection(x)
        return self.pooler(x.flatten(1))


class AudioEncoder(nn.Module):
    """The `AudioEncoder`: `(B, samples)` waveforms → `(B, hidden_dim)`.

    `mel_matrix` is the `(fft_length // 2 + 1, num_mel_bins)` filterbank of
    `keras.layers.MelSpectrogram` (copied by `build_twin`).
    """

    def __init__(
        self,
        mel_matrix,
        fft_length,
        sequence_stride,
        filters,
        hidden_dim,
        top_db=80.0,
        min_power=1e-10,
        epsilon=1e-3,
    ):
        super().__init__()
        mel_matrix = torch.as_tensor(mel_matrix, dtype=torch.float32)
        num_mel_bins = mel_matrix.shape[1]
        self.fft_length = fft_length
        self.sequence_stride = sequence_stride
        self.top_db = top_db
        self.min_power = min_power
        self.register_buffer(
            "window", torch.hann_window(fft_length, periodic=True)
        )
        self.register_buffer("mel_matrix", mel_matrix)
        self.frame_norm = nn.LayerNorm(num_mel_bins, eps=epsilon)
        mel_bins_out = num_mel_bins
        for _ in filters:
            mel_bins_out = -(-mel_bins_out // 2)
        self.blocks = ConvBlocks(1, filters)
        self.projection = nn.Linear(mel_bins_out * filters[-1], hidden_dim)

    def log_mel(self, audio):
        """`(B, samples)` → `(B, frames, num_mel_bins)` in dB, floored
        `top_db` below each clip's peak."""
        spectrum = torch.stft(
            audio,
            n_fft=self.fft_length,
            hop_length=self.sequence_stride,
            window=self.window,
            center=True,
            pad_mode="reflect",
            return_complex=True,
        )
        # |X|² (Keras takes the square of the square root: the same).
        power = torch.view_as_real(spectrum).square().sum(-1)
        mel = torch.matmul(power.transpose(1, 2), self.mel_matrix)
        decibels = 10.0 * torch.log10(mel.clamp_min(self.min_power))
        peak = decibels.amax(dim=(1, 2), keepdim=True)
        return torch.maximum(decibels, peak - self.top_db)

    def forward(self, audio):
        x = self.frame_norm(self.log_mel(audio))
        # The (time, mel) plane with one channel: (B, 1, T, M).
        x = x.unsqueeze(1).contiguous(memory_format=torch.channels_last)
        x = self.blocks(x)
        # (B, C, T, M) channels last → (B, T, M·C), features channel-fastest.
        x = x.permute(0, 2, 3, 1).flatten(2)
        return self.projection(x).mean(1)


class AttentionFusion(nn.Module):
    """`mmzoo.layers.AttentionFusion` over one vector per modality.

    `h = Σ_i softmax_i(aᵀ x_i) · x_i` per head, `x_i` the projected vector of
    modality `i`, zero and weighted 0 where masked; a row with nothing
    present gives zeros.
    """

    def __init__(self, feature_dims, output_dim, num_heads=1):
        super().__init__()
        self.output_dim = output_dim
        self.num_heads = num_heads
        self.projections = nn.ModuleList(
            nn.Linear(dim, output_dim) for dim in feature_dims
        )
        self.query = nn.Parameter(
            torch.zeros(num_heads, output_dim // num_heads)
        )

    def forward(self, features, mask):
        """`features`: list of `(B, dim)` tensors, `None` for a modality
        missing from the whole batch; `mask`: bool `(B, num_modalities)`."""
        tokens = []
        for index, (projection, x) in enumerate(
            zip(self.projections, features)
        ):
            if x is None:
                tokens.append(None)
                continue
            h = projection(x)
            tokens.append(torch.where(mask[:, index, None], h, 0.0))
        first = next(h for h in tokens if h is not None)
        tokens = [torch.zeros_like(first) if h is None else h for h in tokens]
        batch = first.shape[0]
        # (B, T, H, D/H) and logits (B, H, T).
        heads = torch.stack(tokens, 1)
        heads = heads.view(batch, len(tokens), self.num_heads, -1)
        logits = torch.einsum("bthd,hd->bht", heads, self.query)
        present = mask[:, None, :]
        logits = torch.where(present, logits, -1e9)
        # Masked tokens get exactly 0 (exp(-1e9) underflows); an empty row
        # would be uniform before this product, 0 after.
        weights = torch.softmax(logits, -1) * present
        fused = torch.einsum("bht,bthd->bhd", weights, heads)
        return fused.reshape(batch, self.output_dim)


class AVDigitsTwin(nn.Module):
    """Image + audio encoders, attention fusion and the linear head.

    Call it on preprocessed inputs: `images` `(B, 28, 28, 1)` float32 in
    `[0, 1]`, `audio` `(B, 8000)` float32, optional `modality_mask`
    `(B, 2)` (columns image, audio; nonzero where present). A modality given
    as `None` is missing from the whole batch: its encoder is skipped (the
    Keras model runs it on zeros, whose output is then masked).
    """

    def __init__(self, image_encoder, audio_encoder, fusion, num_classes):
        super().__init__()
        self.image_encoder = image_encoder
        self.audio_encoder = audio_encoder
        self.fusion = fusion
        self.head = nn.Linear(fusion.output_dim, num_classes)

    def forward(self, images=None, audio=None, modality_mask=None):
        inputs = (images, audio)
        first = next(x for x in inputs if x is not None)
        if modality_mask is None:
            mask = torch.ones(
                first.shape[0], 2, dtype=torch.bool, device=first.device
            )
        else:
            mask = modality_mask.bool()
        if images is None or audio is None:
            present = torch.tensor([x is not None for x in inputs])
            mask = mask & present.to(mask.device)
        features = [
            None if images is None else self.image_encoder(images),
            None if audio is None else self.audio_encoder(audio),
        ]
        return self.head(self.fusion(features, mask))


# --- Weights from the Keras preset ------------------------------------------


def _copy_dense(linear, layer):
    """Keras `Dense` (kernel `(in, out)`) → `nn.Linear` (`(out, in)`)."""
    kernel, bias = layer.get_weights()
    linear.weight.copy_(torch.from_numpy(kernel.T.copy()))
    linear.bias.copy_(torch.from_numpy(bias))


def _copy_convs(blocks, keras_blocks):
    """Keras `Conv2D`s (kernels HWIO) → the `ConvBlocks`' OIHW kernels."""
    convs = [layer for layer in keras_blocks if hasattr(layer, "kernel")]
    if len(convs) != len(blocks.convs):
        raise ValueError(f"{len(convs)} Keras convs, {len(blocks.convs)} here")
    for conv, layer in zip(blocks.convs, convs):
        kernel, bias = layer.get_weights()
        conv.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1)))
        conv.bias.copy_(torch.from_numpy(bias))


def _mel_matrix(layer):
    """The filterbank `keras.layers.MelSpectrogram` multiplies by."""
    import keras

    matrix = layer.linear_to_mel_weight_matrix(
        num_mel_bins=layer.num_mel_bins,
        num_spectrogram_bins=layer.fft_length // 2 + 1,
        sampling_rate=layer.sampling_rate,
        lower_edge_hertz=layer.min_freq,
        upper_edge_hertz=layer.max_freq,
    )
    return np.asarray(keras.ops.convert_to_numpy(matrix), "float32")


def _check_supported(task):
    """Refuses configurations the twin does not implement."""
    image = task.backbone.encoders["image"]
    audio = task.backbone.encoders["audio"]
    mel = audio.melspectrogram
    expected = {
        "modalities": (task.backbone.modalities, ["image", "audio"]),
        "image pooling": (image.pooling, "flatten"),
        "image data_format": (image.data_format, "channels_last"),
        "window": (mel.window, "hann"),
        "window length": (mel.sequence_length, mel.fft_length),
        "mag_exp": (mel.mag_exp, 2.0),
        "power_to_db": (mel.power_to_db, False),
        "spec_augment": (audio.spec_augment_layer, None),
        "frame_norm axis": (list(audio.frame_norm.axis), [-1]),
        "fusion": (type(task.backbone.fusion).__name__, "AttentionFusion"),
        "fusion bias": (task.backbone.fusion.use_bias, True),
    }
    for what, (got, want) in expected.items():
        if got != want:
            raise ValueError(f"Unsupported {what}: {got!r} (twin: {want!r})")


def build_twin(task):
    """An `AVDigitsTwin` (eval mode, CPU, float32) holding `task`'s weights.

    Args:
        task: the `av_digits_attention` `MultimodalClassifier`, e.g.
            `mmzoo.load("av_digits_attention")`.
    """
    import keras

    _check_supported(task)
    image = task.backbone.encoders["image"]
    audio = task.backbone.encoders["audio"]
    fusion = task.backbone.fusion
    mel = audio.melspectrogram
    twin = AVDigitsTwin(
        ImageEncoder(image.image_shape, image.filters, image.hidden_dim),
        AudioEncoder(
            _mel_matrix(mel),
            mel.fft_length,
            mel.sequence_stride,
            audio.filters,
            audio.hidden_dim,
            top_db=audio.decibels.top_db,
            min_power=audio.decibels.min_power,
            epsilon=audio.frame_norm.epsilon,
        ),
        AttentionFusion(
            [image.hidden_dim, audio.hidden_dim],
            fusion.output_dim,
            fusion.num_heads,
        ),
        task.num_classes,
    )
    with torch.no_grad():
        _copy_convs(twin.image_encoder.blocks, image.blocks)
        _copy_dense(twin.image_encoder.projection, image.projection)
        _copy_dense(twin.image_encoder.pooler, image.pooler.layers[-1])
        _copy_convs(twin.audio_encoder.blocks, audio.blocks)
        _copy_dense(twin.audio_encoder.projection, audio.projection)
        gamma, beta = audio.frame_norm.get_weights()
        twin.audio_encoder.frame_norm.weight.copy_(torch.from_numpy(gamma))
        twin.audio_encoder.frame_norm.bias.copy_(torch.from_numpy(beta))
        for projection, name in zip(
            twin.fusion.projections, task.backbone.modalities
        ):
            _copy_dense(projection, fusion.projections[name])
        query = keras.ops.convert_to_numpy(fusion.query)
        twin.fusion.query.copy_(torch.from_numpy(np.asarray(query)))
        _copy_dense(twin.head, task.output_dense)
    for encoder in (twin.image_encoder, twin.audio_encoder):
        for conv in encoder.blocks.convs:
            conv.to(memory_format=torch.channels_last)
    return twin.eval()


# --- Checking against Keras -------------------------------------------------


def twin_inputs(preprocessed):
    """The twin's keyword arguments from `task.preprocessor`'s outputs (any
    Keras backend): float32 CPU tensors, the mask as bool."""
    import keras

    def tensor(name, dtype):
        value = keras.ops.convert_to_numpy(preprocessed[name])
        return torch.from_numpy(np.ascontiguousarray(value, dtype))

    return {
        "images": tensor("image", "float32"),
        "audio": tensor("audio", "float32"),
        "modality_mask": tensor("modality_mask", "bool"),
    }


def _keras_outputs(task, x):
    """`task.predict` on raw inputs, as numpy."""
    rows = len(next(iter(x.values())))
    return np.asarray(task.predict(x, batch_size=rows, verbose=0))


def check(task, n=64):
    """Runs Keras and the twin on the first `n` AV-digits test examples.

    Four cases: both modalities; the image masked (`modality_mask` column 0
    set to 0); the image left out (the twin skips its encoder); the audio
    left out. Prints and returns `{case: max |logit difference|}`.
    """
    import keras

    from mmzoo.datasets import load_av_digits

    x, _ = load_av_digits("test", verbose=False)
    x = {name: x[name][:n] for name in ("image", "audio")}
    twin = build_twin(task)
    kwargs = twin_inputs(task.preprocessor(x))
    softmax = task.activation is keras.activations.softmax
    if not (softmax or task.activation is keras.activations.linear):
        raise ValueError(f"Unsupported head activation {task.activation}")
    image_masked = np.tile(np.array([[0, 1]], "int32"), (n, 1))
    cases = {
        "image + audio": (x, kwargs),
        "image masked (mask column 0 = 0)": (
            {**x, "modality_mask": image_masked},
            {**kwargs, "modality_mask": torch.from_numpy(image_masked)},
        ),
        "image left out": (
            {"audio": x["audio"]},
            {**kwargs, "images": None, "modality_mask": None},
        ),
        "audio left out": (
            {"image": x["image"]},
            {**kwargs, "audio": None, "modality_mask": None},
        ),
    }
    results = {}
    for name, (keras_x, twin_kwargs) in cases.items():
        expected = _keras_outputs(task, keras_x)
        with torch.inference_mode():
            got = twin(**twin_kwargs)
            if softmax:  # compare probabilities with probabilities
                got = torch.softmax(got, -1)
        results[name] = float(np.abs(got.numpy() - expected).max())
    what = "probability" if softmax else "logit"
    for name, difference in results.items():
        print(f"{name}: max |{what} difference| on {n} = {difference:.3g}")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads"
    )
    parser.add_argument("--tolerance", type=float, default=1e-4)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import mmzoo

    task = mmzoo.load("av_digits_attention")
    results = check(task, n=args.examples)
    worst = max(results.values())
    verdict = "OK" if worst <= args.tolerance else "FAILED"
    print(f"{verdict}: worst {worst:.3g} (tolerance {args.tolerance:g})")
    return 0 if verdict == "OK" else 1


if __name__ == "__main__":
    raise SystemExit(main())
