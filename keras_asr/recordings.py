"""The audio side of the retrieval application: a recording into a checked spectrogram, recordings into an index.

`load_spectrogram` refuses what the model cannot match (a missing or undecodable file, silence, a recording
shorter than one excerpt) with a `RetrievalError` that says why; `excerpt_starts` spaces a query's excerpts
evenly; `index_recordings` embeds an excerpt every `hop` frames of each recording, for `identification.locate`.

Example:

```python
spec = load_spectrogram("take1.flac", encoders.frames)   # (92, N), N >= encoders.frames
index, sources, skipped = index_recordings(encoders, ["take1.flac", "take2.flac"], hop=DEFAULT_AUDIO_HOP)
```
"""

import numpy as np

from keras_asr import audio as audio_lib
from keras_asr import library
from keras_asr import windows
from keras_asr.encoding import RetrievalError

# A recording whose peak stays below -60 dBFS carries no music the model could match.
SILENCE_PEAK = 1e-3
# Median over frames of the loudest band below which a recording is silent where the model listens (30-6,000 Hz):
# a DC offset gives 0.007, a sine at -40 dBFS 0.68, a piano recording about 0.5.
BAND_SILENCE = 0.05
DEFAULT_AUDIO_HOP = 10  # frames between excerpts of an audio index: 0.5 s


def load_spectrogram(path, frames):
    """The spectrogram of a recording, checked to hold sound and at least one excerpt of `frames` frames.

    Raises:
        RetrievalError: missing or undecodable file, silence, or shorter than one excerpt.
    """
    try:
        signal = audio_lib.load_audio(path)
    except (FileNotFoundError, ValueError) as e:
        raise RetrievalError(str(e)) from e
    peak = float(np.max(np.abs(signal))) if len(signal) else 0.0
    if peak < SILENCE_PEAK:
        level = "all samples are zero" if peak == 0 else f"peak {20 * np.log10(peak):.0f} dBFS"
        raise RetrievalError(f"{path} is silent ({level}): nothing to match.")
    spec = audio_lib.spectrogram(signal)
    if len(spec.T) and float(np.median(spec.max(axis=0))) < BAND_SILENCE:
        raise RetrievalError(f"{path} holds no sound between 30 and 6,000 Hz in most of its frames (a constant "
                             "or DC signal?): nothing to match.")
    if spec.shape[1] < frames:
        raise RetrievalError(
            f"{path} lasts {len(signal) / audio_lib.SAMPLE_RATE:.2f} s, shorter than one excerpt of the model "
            f"({frames} frames = {frames / audio_lib.FPS:.2f} s)."
        )
    return spec


def excerpt_starts(num_frames, frames, count):
    """First frames of up to `count` evenly spaced excerpts of `frames` frames (fewer if the audio is short)."""
    return np.unique(np.round(np.linspace(0, num_frames - frames, count)).astype(int))


def index_recordings(encoders, paths, hop=DEFAULT_AUDIO_HOP, log=None):
    """Embeds excerpts every `hop` frames of each recording; unreadable or too short ones are skipped.

    Returns:
        (index, sources, skipped) as `library.index_scores`, with columns `recording` and `time` (the excerpt's
        centre, in seconds: an excerpt is centred on the score position it matches).
    """

    def add(index, recording, spec):
        starts = np.arange(0, spec.shape[1] - encoders.frames + 1, hop)
        index.add(
            encoders.audio(windows.excerpts(spec, starts + encoders.frames // 2, encoders.frames)),
            recording=[recording] * len(starts), time=(starts + encoders.frames // 2) / audio_lib.FPS,
        )
        return f"recording {recording}, {spec.shape[1] / audio_lib.FPS:.1f} s, {len(starts)} excerpts"

    return library.index_files(encoders, paths, lambda path: load_spectrogram(path, encoders.frames),
                               RetrievalError, add, log)
