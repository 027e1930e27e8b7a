"""Automatic alignment check of a built corpus: does each aligned notehead's pitch start sounding at its frame?

For a notehead with pitch p aligned to onset frame f, the test looks at the spectrogram bands of p's
fundamental and second harmonic: the note passes when one of them is louder at frame f than at frame f - 3
by `threshold` (log10(1 + x) units). Frame f is the first whose window starts after the onset and f - 3
the last that ends before it (frames are 93 ms long, 50 ms apart). The same test three frames later, at
f + 3 against f, where the note sustains rather than starts, is the control: the rate one would see without
alignment. Only notes followed by at least `min_gap` frames without a new onset are tested, so that the
control window ends before the next onset.

    python -m tfds_msmd.corpus.alignment_check /data/msmd_offline
"""

import argparse
import dataclasses
import glob
import os

import numpy as np

from tfds_msmd import layout

BEFORE = 3  # frames between the last frame that ends before the onset and the onset frame


@dataclasses.dataclass
class Summary:
    """Result of an alignment check.

    Attributes:
        checked: number of (notehead, performance) pairs tested.
        passed: fraction of them whose pitch band rises at the aligned onset frame.
        control: fraction that rises at the control frame f + 3.
        performances: number of performances tested.
    """

    checked: int
    passed: float
    control: float
    performances: int

    def __str__(self):
        return (f"alignment check: {self.checked} noteheads in {self.performances} performances; "
                f"pitch band rises at the onset frame for {100 * self.passed:.1f}%, "
                f"at a control frame for {100 * self.control:.1f}%")


def check_alignment(root, pieces=None, shift=0, threshold=0.05, min_gap=BEFORE + 2, verbose=True):
    """Checks the notehead-onset alignment of the pieces under `root`.

    Args:
        root: corpus root (or any folder of MSMD piece folders with spectrograms).
        pieces: piece names to check (default: every piece folder).
        shift: frames added to every stored onset frame (a deliberately wrong alignment, for testing).
        threshold: minimum band rise to pass.
        min_gap: test only notes followed by at least this many frames without another onset.
        verbose: print the summary.

    Returns:
        A `Summary`.
    """
    import librosa

    from keras_asr import audio

    if pieces is None:
        pieces = sorted(d for d in os.listdir(root)
                        if not d.startswith(".") and os.path.isdir(os.path.join(root, d, "performances")))
    hits, controls, n_perf = [], [], 0
    for piece in pieces:
        piece_dir = os.path.join(root, piece)
        score = layout.score_dir(piece_dir)
        heads = [h for f in sorted(glob.glob(os.path.join(score, "mung", "*.xml"))) for h in layout.read_mung(f)]
        pitches = np.array([h.pitch for h in heads])
        for name in layout.performance_names(piece_dir):
            key = f"{name}_onset_frame"
            aligned = [i for i, h in enumerate(heads) if key in h.data]
            if not aligned:
                continue
            n_perf += 1
            spec = layout.load_spectrogram(os.path.join(piece_dir, "performances", name))
            frames = np.array([heads[i].data[key] for i in aligned]) + shift
            distinct = np.unique(frames)
            nxt = distinct[np.minimum(np.searchsorted(distinct, frames, "right"), len(distinct) - 1)]
            gap = np.where(nxt > frames, nxt - frames, spec.shape[1] - frames)
            ok = (gap >= min_gap) & (frames >= BEFORE) & (frames + BEFORE < spec.shape[1])
            p = pitches[aligned][ok]
            f0 = librosa.midi_to_hz(p)
            valid = (f0 > audio.FMIN) & (2 * f0 < audio.FMAX)
            bands = np.stack([audio.pitch_to_bin(p[valid]), audio.pitch_to_bin(p[valid] + 12)])
            f = frames[ok][valid]
            hits.append(_rises(spec, bands, f, threshold))
            controls.append(_rises(spec, bands, f + BEFORE, threshold))
    hits, controls = np.concatenate(hits or [[]]), np.concatenate(controls or [[]])
    summary = Summary(len(hits), float(np.mean(hits)) if len(hits) else 0.0,
                      float(np.mean(controls)) if len(controls) else 0.0, n_perf)
    if verbose:
        print(summary)
    return summary


def _rises(spec, bands, frames, threshold):
    """Whether any of `bands` (k, n) rises by `threshold` from frame - BEFORE to frame, per note."""
    return np.any(spec[bands, frames] - spec[bands, frames - BEFORE] > threshold, axis=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Checks a corpus's notehead-onset alignment.")
    parser.add_argument("root")
    parser.add_argument("--shift", type=int, default=0, help="shift every onset frame (a wrong alignment)")
    args = parser.parse_args(argv)
    check_alignment(args.root, shift=args.shift)


if __name__ == "__main__":
    main()
