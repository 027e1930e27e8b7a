"""Audio loading and the MSMD spectrogram front end.

MSMD computed its spectrograms with madmom (`msmd/midi_parser.py`):
`FramedSignalProcessor(frame_size=2048, fps=20, origin="future")` followed by
`FilteredSpectrogramProcessor(LogarithmicFilterbank, num_bands=16, fmin=30, fmax=6000)` and
`LogarithmicSpectrogramProcessor()`. madmom does not install on current Pythons, so this module reproduces
that chain in NumPy, bin for bin:

- Frame `i` starts at sample `int(i * 1102.5)` (madmom's `origin="future"`: the hop position is the frame's
  left edge) and spans 2048 samples, zero-padded past the end; there are `ceil(len / 1102.5)` frames.
- Magnitude of the FFT of the Hann-windowed (`np.hanning`) frame, bins 0..1023 (no Nyquist bin).
- Triangular filters on log-spaced centres (16 per octave around 440 Hz, 30-6000 Hz) snapped to FFT bins,
  duplicates removed, each normalised to unit area: 92 bands.
- `log10(1 + x)`.

With this framing the onset frame of an event at `t` seconds, `ceil(20 * t)`, is the first frame whose
window lies entirely after the onset: a note's energy reaches its full level there.
"""

import functools
import os
import shutil
import subprocess
import tempfile

import numpy as np

from keras_asr.geometry import FPS
from keras_asr.geometry import FRAME_SIZE
from keras_asr.geometry import NUM_BINS
from keras_asr.geometry import SAMPLE_RATE

HOP_SIZE = SAMPLE_RATE / FPS  # 1102.5: madmom keeps the fractional hop and truncates each frame start.
BANDS_PER_OCTAVE = 16
FMIN = 30.0
FMAX = 6000.0
FREF = 440.0


def load_audio(path, sr=SAMPLE_RATE):
    """Loads an audio file as a mono float32 signal at `sr` Hz.

    Reads anything libsndfile reads (wav, flac, ogg, mp3, ...). Channels are averaged, then the signal is
    resampled with librosa (soxr) when the file's rate differs from `sr`.

    Args:
        path: path to the audio file.
        sr: target sample rate in Hz.

    Returns:
        A float32 array of shape `(num_samples,)` with values in [-1, 1].

    Raises:
        FileNotFoundError: if `path` does not exist.
        ValueError: if the file exists but cannot be decoded as audio.
    """
    import soundfile

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Audio file not found: {path}")
    try:
        signal, file_sr = soundfile.read(path, dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError) as e:
        raise ValueError(f"Cannot decode audio file {path}: {e}") from e
    signal = signal.mean(axis=1)
    if file_sr != sr:
        import librosa

        signal = librosa.resample(signal, orig_sr=file_sr, target_sr=sr)
    return np.ascontiguousarray(signal, dtype=np.float32)


def synthesize(midi_path, soundfont, sr=SAMPLE_RATE):
    """Renders a MIDI file with FluidSynth, as MSMD did, and returns the mono signal at `sr` Hz.

    FluidSynth renders at its default 44.1 kHz and default gain (MSMD's levels); the result is then
    resampled like any other file by `load_audio`.

    Args:
        midi_path: path to a standard MIDI file.
        soundfont: path to a .sf2/.sf3 SoundFont.
        sr: target sample rate in Hz.

    Returns:
        A float32 array of shape `(num_samples,)`.

    Raises:
        FileNotFoundError: if the MIDI file, the SoundFont or the `fluidsynth` program is missing.
        RuntimeError: if FluidSynth fails.
    """
    for f in (midi_path, soundfont):
        if not os.path.isfile(f):
            raise FileNotFoundError(f"File not found: {f}")
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise FileNotFoundError("The `fluidsynth` program is not installed (Debian: apt-get install fluidsynth).")
    with tempfile.TemporaryDirectory() as tmp:
        wav = os.path.join(tmp, "out.wav")
        # -n -i: no MIDI input, no shell; dynamic sample loading makes the large sf3 files load fast.
        cmd = [exe, "-n", "-i", "-q", "-o", "synth.dynamic-sample-loading=1", "-F", wav, "-r", "44100",
               os.fspath(soundfont), os.fspath(midi_path)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not os.path.isfile(wav):
            raise RuntimeError(f"fluidsynth failed on {midi_path}: {proc.stderr.strip()}")
        return load_audio(wav, sr)


def fft_frequencies(sr=SAMPLE_RATE, frame_size=FRAME_SIZE):
    """Centre frequencies (Hz) of the `frame_size // 2` FFT bins the spectrogram keeps."""
    return np.arange(frame_size // 2) * sr / frame_size


@functools.lru_cache(maxsize=4)
def _filterbank_and_centres(sr, frame_size):
    """madmom's LogarithmicFilterbank(num_bands=16, fmin=30, fmax=6000, norm_filters, unique_filters)."""
    bin_freqs = fft_frequencies(sr, frame_size)
    # madmom.audio.filters.log_frequencies
    left = np.floor(np.log2(FMIN / FREF) * BANDS_PER_OCTAVE)
    right = np.ceil(np.log2(FMAX / FREF) * BANDS_PER_OCTAVE)
    freqs = FREF * 2.0 ** (np.arange(left, right) / BANDS_PER_OCTAVE)
    freqs = freqs[np.searchsorted(freqs, FMIN) :]
    freqs = freqs[: np.searchsorted(freqs, FMAX, "right")]
    # madmom.audio.filters.frequencies2bins: the nearest FFT bin, duplicates merged.
    idx = np.clip(bin_freqs.searchsorted(freqs), 1, len(bin_freqs) - 1)
    idx -= (freqs - bin_freqs[idx - 1]) < (bin_freqs[idx] - freqs)
    bins = np.unique(idx)
    # madmom.audio.filters.TriangularFilter.filters(bins, norm=True, overlap=True)
    fb = np.zeros((len(bin_freqs), len(bins) - 2), np.float32)
    for band, (start, centre, stop) in enumerate(zip(bins[:-2], bins[1:-1], bins[2:])):
        tri = np.concatenate(
            [
                np.linspace(0, 1, centre - start, endpoint=False),
                np.linspace(1, 0, stop - centre, endpoint=False),
            ]
        )
        fb[start:stop, band] = tri / tri.sum()
    fb.setflags(write=False)
    centres = bin_freqs[bins[1:-1]]
    centres.setflags(write=False)
    return fb, centres


def filterbank(sr=SAMPLE_RATE, frame_size=FRAME_SIZE):
    """The `(frame_size // 2, 92)` float32 log-frequency filterbank (read-only)."""
    return _filterbank_and_centres(sr, frame_size)[0]


def band_frequencies(sr=SAMPLE_RATE, frame_size=FRAME_SIZE):
    """Centre frequencies (Hz) of the 92 spectrogram bins, ascending (read-only)."""
    return _filterbank_and_centres(sr, frame_size)[1]


def pitch_to_bin(pitch, sr=SAMPLE_RATE, frame_size=FRAME_SIZE):
    """The spectrogram bin that holds the fundamental of MIDI pitch `pitch`.

    The pitch's frequency is snapped to its nearest FFT bin, then the band whose filter weighs that bin most
    is returned: low pitches share bands because the FFT resolution (10.8 Hz) is coarser than a semitone.

    Args:
        pitch: MIDI pitch number (int or array of ints); fundamentals must lie within about 30-6000 Hz.

    Returns:
        An int (or int array) in [0, 92).
    """
    import librosa

    fb = filterbank(sr, frame_size)
    fft_bin = np.rint(librosa.midi_to_hz(pitch) * frame_size / sr).astype(int)
    if np.any((fft_bin < 0) | (fft_bin >= fb.shape[0])) or not np.all(fb[np.clip(fft_bin, 0, fb.shape[0] - 1)].any(-1)):
        raise ValueError(f"Pitch {pitch} lies outside the spectrogram's frequency range.")
    band = np.argmax(fb[fft_bin], axis=-1)
    return int(band) if np.ndim(band) == 0 else band


def num_frames(num_samples, fps=FPS, sr=SAMPLE_RATE):
    """Number of spectrogram frames for a signal of `num_samples` samples (madmom: ceil(n / hop))."""
    return int(np.ceil(num_samples / (sr / fps)))


def onset_frame(seconds, fps=FPS):
    """MSMD's onset frame of an event at `seconds`: ceil(seconds * fps)."""
    return np.ceil(np.asarray(seconds) * fps).astype(int)


# Onset detection on the spectrogram: a peak of the spectral flux must stand this far (of the flux' maximum)
# above its mean over +-3 frames.
ONSET_DELTA = 0.02


def detect_onsets(spec, delta=ONSET_DELTA):
    """Onset frames of the notes in a (92, N) spectrogram (`spectrogram`'s), ascending, as `onset_frame` counts
    them: the first frame that starts at or after the note.

    Spectral flux (the rise of each band from the frame before, averaged over bands after a 3-band maximum
    filter, which ignores vibrato) with peaks picked against the local mean. A flux peak is the first frame
    whose 93 ms window holds the attack, so the note began within that frame's hop or the next: the onset
    frame is the one after the peak. Measured on the 510 test renders of the varied corpus (x0.5-x2;
    examples/evaluate_onsets.py, before the shift): 80 % of the peaks one frame before the MIDI's onset
    frame, 5 % two frames before, 99.9 % within 2 frames; 97.3 % of the onsets found.

    Example (a band that starts sounding in frame 10, another in frame 25):

    >>> spec = np.zeros((92, 40), np.float32); spec[30, 10:] = 1.0; spec[50, 25:] = 1.0
    >>> detect_onsets(spec).tolist()
    [11, 26]
    """
    import librosa

    spec = np.asarray(spec, np.float32)
    if spec.ndim != 2 or spec.shape[1] < 2:
        raise ValueError(f"Expected a (bands, frames) spectrogram with at least 2 frames, got shape {spec.shape}.")
    # With center=False librosa pads the flux at the front by `lag`, so flux[i] is the rise into frame i.
    flux = librosa.onset.onset_strength(S=spec, lag=1, max_size=3, aggregate=np.mean, center=False)
    peak = float(flux.max())
    if peak <= 0:
        return np.zeros(0, np.int64)
    peaks = librosa.util.peak_pick(flux / peak, pre_max=1, post_max=1, pre_avg=3, post_avg=3, delta=delta, wait=1)
    frames = np.asarray(peaks, np.int64) + 1
    return frames[frames < spec.shape[1]]


def spectrogram(signal, sr=SAMPLE_RATE):
    """MSMD's log-filtered magnitude spectrogram (madmom-equivalent, see the module docstring).

    Args:
        signal: mono float signal sampled at `sr` Hz, values in [-1, 1] (as `load_audio` returns).
        sr: sample rate of `signal`; MSMD uses 22050.

    Returns:
        A float32 array of shape `(92, num_frames)`, frames at 20 per second.
    """
    signal = np.asarray(signal, np.float32)
    if signal.ndim != 1:
        raise ValueError(f"Expected a mono signal of shape (num_samples,), got shape {signal.shape}.")
    hop = sr / FPS
    n = num_frames(len(signal), FPS, sr)
    # Frame i = samples [int(i * hop), int(i * hop) + 2048), zero-padded at the end.
    starts = (np.arange(n) * hop).astype(np.int64)
    padded = np.concatenate([signal, np.zeros(FRAME_SIZE, np.float32)])
    window = np.hanning(FRAME_SIZE).astype(np.float32)
    fb = filterbank(sr, FRAME_SIZE)
    out = np.empty((fb.shape[1], n), np.float32)
    chunk = 2048  # frames per FFT batch: bounds memory on long recordings.
    for c in range(0, n, chunk):
        idx = starts[c : c + chunk, None] + np.arange(FRAME_SIZE)
        mag = np.abs(np.fft.rfft(padded[idx] * window, axis=1)[:, : FRAME_SIZE // 2])
        out[:, c : c + chunk] = (mag.astype(np.float32) @ fb).T
    return np.log10(1.0 + out, dtype=np.float32)
