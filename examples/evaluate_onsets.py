"""How well `audio.detect_onsets` finds the notes of corpus renders: precision and recall against the MIDI.

The reference is each performance's alignment (the unique onset frames of its noteheads). A detected onset is
right when a reference onset lies within `--tolerance` frames; a reference onset is found when a detection
does. Reported per tempo ratio and over all, with the numbers behind each share. Identification
(`identify(snap_onsets=True)`) reads the score position at the last detected onset, so a missed onset holds the
cursor on the note before, and a spurious one moves it early. The offsets show where the detections lie against
MSMD's onset frame (the first frame starting at or after the note).

    python examples/evaluate_onsets.py --corpus ROOT --split test --pieces 0 --out docs/results/onsets_varied_test.json
"""

import argparse
import json
import os
import sys

import numpy as np

from keras_asr import audio
from tfds_msmd import layout


def compare(detected, reference, tolerance):
    """(detections within `tolerance` frames of a reference onset, reference onsets within `tolerance` of a
    detection, detected minus nearest reference onset frame for each detection).

    >>> right, found, offsets = compare(np.array([9, 19, 31]), np.array([10, 21]), 1)
    >>> right, found, offsets.tolist()
    (1, 1, [-1, -2, 10])
    """
    detected, reference = np.asarray(detected), np.asarray(reference)
    if not len(detected) or not len(reference):
        return 0, 0, np.zeros(0, np.int64)
    signed = detected[:, None] - reference[None, :]
    distance = np.abs(signed)
    offsets = signed[np.arange(len(detected)), distance.argmin(axis=1)]
    return int((distance.min(axis=1) <= tolerance).sum()), int((distance.min(axis=0) <= tolerance).sum()), offsets


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", required=True, help="corpus root (with a split file)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--pieces", type=int, default=9, help="the first N pieces of the split (0: all)")
    parser.add_argument("--tolerance", type=int, default=1, help="frames (50 ms each)")
    parser.add_argument("--delta", type=float, default=audio.ONSET_DELTA)
    parser.add_argument("--out", help="JSON file for the figures")
    args = parser.parse_args(argv)

    split_file = layout.find_split_file(args.corpus)
    if split_file is None:
        parser.error(f"{args.corpus} has no split file: is it a built corpus root?")
    pieces = sorted(layout.read_split(split_file)[args.split])
    pieces = pieces[: args.pieces] if args.pieces else pieces
    totals = {}
    for k, piece in enumerate(pieces, 1):
        for record in layout.read_piece(os.path.join(args.corpus, piece)):
            detected = audio.detect_onsets(record.spectrogram, delta=args.delta)
            right, found, offsets = compare(detected, record.onset_frames, args.tolerance)
            offsets = offsets.clip(-3, 3).tolist()
            for key in (f"x{record.tempo_ratio:g}", "all"):
                t = totals.setdefault(key, {"renders": 0, "detected": 0, "right": 0, "onsets": 0, "found": 0,
                                            "offsets": {}})
                t["renders"] += 1
                t["detected"] += len(detected)
                t["right"] += right
                t["onsets"] += len(record.onset_frames)
                t["found"] += found
                for offset in offsets:
                    t["offsets"][str(offset)] = t["offsets"].get(str(offset), 0) + 1
        print(f"[{k}/{len(pieces)}] {piece}", file=sys.stderr, flush=True)
    for t in totals.values():
        t["precision"] = t["right"] / max(t["detected"], 1)
        t["recall"] = t["found"] / max(t["onsets"], 1)
    print(f"{'tempo':>6} {'renders':>7} {'onsets':>7} {'precision':>9} {'recall':>7}   detected - MIDI onset frame "
          "(-3..3, clipped)")
    for key, t in sorted(totals.items(), key=lambda kv: (kv[0] == "all", kv[0])):
        shares = " ".join(f"{k}:{100 * t['offsets'].get(str(k), 0) / max(t['detected'], 1):.1f}%"
                          for k in range(-3, 4))
        print(f"{key:>6} {t['renders']:7d} {t['onsets']:7d} {100 * t['precision']:8.1f}% {100 * t['recall']:6.1f}%   "
              f"{shares}")
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump({"corpus": os.path.abspath(args.corpus), "split": args.split, "pieces": pieces,
                       "tolerance_frames": args.tolerance, "delta": args.delta, "by_tempo": totals}, f, indent=1)


if __name__ == "__main__":
    main()
