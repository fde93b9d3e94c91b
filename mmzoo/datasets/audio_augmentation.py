"""Degradations of clean speech toward what real recordings sound like.

All functions take and return float waveforms `(samples,)` or `(batch,
samples)` in [-1, 1] and draw their randomness from a
`numpy.random.Generator`, so a set built with a seed is the same everywhere.
They model the gap between a synthesiser and a telephone line: level,
placement in the window, background noise, room reverberation, the
300-3400 Hz telephone band sampled at 8 kHz, and the GSM 06.10 codec of
mobile and VoIP calls (through the `sox` command: `apt-get install sox`).
"""

import shutil
import subprocess

import numpy as np

SOX_EXECUTABLE = "sox"


def _batch(audio):
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim not in (1, 2):
        raise ValueError(
            "Expected waveforms of shape (samples,) or (batch, samples). "
            f"Received shape {audio.shape}."
        )
    return audio[None] if audio.ndim == 1 else audio, audio.ndim == 1


def _unbatch(audio, single):
    return audio[0] if single else audio


def random_gain(audio, rng, low_db=-12.0, high_db=0.0):
    """Scales each clip by a gain drawn uniformly in decibels."""
    audio, single = _batch(audio)
    gain = 10 ** (rng.uniform(low_db, high_db, (len(audio), 1)) / 20)
    return _unbatch((audio * gain).astype(np.float32), single)


def random_shift(audio, rng, max_shift):
    """Delays each clip by 0 to `max_shift` samples (zeros shifted in)."""
    audio, single = _batch(audio)
    out = np.zeros_like(audio)
    for i, shift in enumerate(rng.integers(0, max_shift + 1, len(audio))):
        out[i, shift:] = audio[i, : audio.shape[1] - shift]
    return _unbatch(out, single)


def add_noise(audio, rng, snr_db=(10.0, 40.0)):
    """Adds white or brown noise at a signal-to-noise ratio drawn in `snr_db`.

    The signal power is measured over the clip's non-silent samples.
    """
    audio, single = _batch(audio)
    out = audio.copy()
    for i, clip in enumerate(audio):
        loud = clip[np.abs(clip) > 1e-3 * (np.abs(clip).max() + 1e-12)]
        power = np.mean(loud**2) if loud.size else 0.0
        if power == 0:
            continue
        noise = rng.standard_normal(clip.size)
        if rng.random() < 0.5:  # brown: more low-frequency hum
            noise = np.cumsum(noise)
            noise -= np.convolve(noise, np.ones(101) / 101, mode="same")
        noise /= np.sqrt(np.mean(noise**2)) + 1e-12
        snr = rng.uniform(*snr_db)
        out[i] = clip + noise * np.sqrt(power / 10 ** (snr / 10))
    return _unbatch(np.clip(out, -1, 1).astype(np.float32), single)


def room_reverb(audio, rng, sample_rate, rt60=(0.2, 0.8), wet=(0.3, 0.7)):
    """Adds the reverberation of a synthetic room.

    Each clip is convolved with its own impulse response: a direct-path
    impulse at t=0, then Gaussian noise decaying exponentially by 60 dB in
    RT60 seconds, drawn uniformly in `rt60`; the tail carries as much
    energy as the direct path and the response has unit energy. The
    reverberant clip is mixed with the dry one as
    `(1 - w) * dry + w * reverberant`, `w` drawn uniformly in `wet`, cut to
    the original length (the tail past the end is dropped) and scaled down
    if its peak exceeds 1.

    Args:
        audio: waveforms `(samples,)` or `(batch, samples)`.
        rng: a `numpy.random.Generator`.
        sample_rate: int. Sample rate of `audio`, in Hz.
        rt60: `(low, high)` reverberation times in seconds, > 0.
        wet: `(low, high)` fractions of the reverberant signal, in [0, 1].
    """
    audio, single = _batch(audio)
    if not 0 < rt60[0] <= rt60[1]:
        raise ValueError(
            f"`rt60` must be (low, high) with 0 < low <= high; got {rt60!r}."
        )
    if not 0 <= wet[0] <= wet[1] <= 1:
        raise ValueError(
            f"`wet` must be (low, high) in [0, 1], low <= high; got {wet!r}."
        )
    num_samples = audio.shape[1]
    out = np.empty_like(audio)
    for i, clip in enumerate(audio):
        t60 = rng.uniform(*rt60)
        mix = rng.uniform(*wet)
        length = max(2, int(round(t60 * sample_rate)))
        t = np.arange(1, length) / sample_rate
        tail = rng.standard_normal(length - 1)
        tail *= np.exp(-3 * np.log(10) * t / t60)  # -60 dB at t60
        response = np.zeros(length)
        response[0] = 1.0
        response[1:] = tail / (np.sqrt(np.sum(tail**2)) + 1e-12)
        response /= np.sqrt(2.0)
        size = 1 << (num_samples + length - 2).bit_length()
        reverberant = np.fft.irfft(
            np.fft.rfft(clip, size) * np.fft.rfft(response, size), size
        )[:num_samples]
        mixed = (1 - mix) * clip + mix * reverberant
        peak = np.max(np.abs(mixed), initial=0.0)
        out[i] = mixed / peak if peak > 1 else mixed
    return _unbatch(out, single)


def _fir(cutoffs, sample_rate, num_taps=101, pass_zero=True):
    """Windowed-sinc low-pass (one cutoff) or band-pass (two), in Hz."""
    n = np.arange(num_taps) - (num_taps - 1) / 2

    def lowpass(f):
        fc = f / sample_rate
        return 2 * fc * np.sinc(2 * fc * n)

    if len(cutoffs) == 1:
        taps = lowpass(cutoffs[0])
    else:
        taps = lowpass(cutoffs[1]) - lowpass(cutoffs[0])
    return taps * np.hamming(num_taps)


def telephone_band(audio, sample_rate, low_hz=300.0, high_hz=3400.0):
    """Band-limits to the telephone band and passes through 8 kHz.

    Band-pass `low_hz`-`high_hz`, keep every `sample_rate / 8000`-th sample,
    then interpolate back to `sample_rate` (linear, low-passed again).
    """
    audio, single = _batch(audio)
    taps = _fir((low_hz, high_hz), sample_rate)
    out = np.stack([np.convolve(c, taps, mode="same") for c in audio])
    factor = sample_rate // 8000
    if factor > 1:
        low = out[:, ::factor]
        positions = np.arange(audio.shape[1]) / factor
        out = np.stack(
            [np.interp(positions, np.arange(low.shape[1]), c) for c in low]
        )
        smooth = _fir((3800.0,), sample_rate)
        smooth /= smooth.sum()
        out = np.stack([np.convolve(c, smooth, mode="same") for c in out])
    return _unbatch(np.clip(out, -1, 1).astype(np.float32), single)


def gsm_codec(audio, sample_rate):
    """Encodes and decodes with the GSM 06.10 codec (8 kHz), via `sox`.

    All clips go through one `sox` call each way: they are joined, each
    padded to whole 20 ms GSM frames, and split again.

    Raises:
        FileNotFoundError: if `sox` is not installed.
        RuntimeError: if `sox` fails.
    """
    executable = shutil.which(SOX_EXECUTABLE)
    if executable is None:
        raise FileNotFoundError(
            f"gsm_codec() runs the `{SOX_EXECUTABLE}` command, which was not "
            "found on PATH. Install it, e.g. `apt-get install sox`."
        )
    audio, single = _batch(audio)
    num, length = audio.shape
    # Per clip: a whole number of 160-sample GSM frames at 8 kHz.
    frames = -(-length * 8000 // sample_rate // 160)
    span = frames * 160 * sample_rate // 8000
    joined = np.zeros((num, span), np.float32)
    joined[:, :length] = audio
    pcm = (np.clip(joined.ravel(), -1, 1) * 32767).astype("<i2").tobytes()
    raw = ["-t", "raw", "-e", "signed-integer", "-b", "16", "-c", "1"]
    # -R: sox seeds its dither with a fixed number (otherwise from the clock).
    encode = [executable, "-R", *raw, "-r", str(sample_rate), "-", "-r", "8000"]
    encode += ["-t", "gsm", "-"]
    decode = [executable, "-R", "-t", "gsm", "-r", "8000", "-c", "1", "-"]
    decode += [*raw, "-r", str(sample_rate), "-"]
    out = b""
    for command, data in ((encode, pcm), (decode, None)):
        result = subprocess.run(
            command,
            input=data if data is not None else out,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"`{' '.join(command)}` failed: "
                + result.stderr.decode("utf-8", "replace").strip()
            )
        out = result.stdout
    decoded = np.frombuffer(out, "<i2").astype(np.float32) / 32768
    if decoded.size < num * span:
        decoded = np.pad(decoded, (0, num * span - decoded.size))
    decoded = decoded[: num * span].reshape(num, span)[:, :length]
    return _unbatch(decoded, single)
