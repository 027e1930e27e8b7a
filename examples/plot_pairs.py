"""Draws a few audio-sheet pairs (sheet snippet beside its spectrogram excerpt) to check that they match.

    python examples/plot_pairs.py                                  # the tiny corpus in the repository
    python examples/plot_pairs.py --corpus /data/msmd_offline      # any folder in the MSMD layout
    python examples/plot_pairs.py --tfds msmd/small --split test   # a built TFDS split

In each row the notehead at the centre of the snippet (red line) is played at the centre of the excerpt
(red line): the onset frame. With --augment the pairs are drawn as in training.
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from keras_asr import data  # noqa: E402
from tfds_msmd import layout  # noqa: E402

DUMMY_DATA = os.path.join(os.path.dirname(__file__), "..", "tfds_msmd", "msmd", "dummy_data")


def load_pool(args):
    if args.tfds:
        return data.PairPool.from_tfds(args.split, name=args.tfds, data_dir=args.data_dir)
    pieces = layout.read_split(args.corpus)[args.split] if args.split else sorted(
        p for p in os.listdir(args.corpus) if os.path.isdir(os.path.join(args.corpus, p, "scores")))
    return data.PairPool([r for p in pieces for r in layout.read_piece(os.path.join(args.corpus, p))])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", default=DUMMY_DATA, help="corpus root in the MSMD layout")
    parser.add_argument("--tfds", help="TFDS name, e.g. msmd/small (instead of --corpus)")
    parser.add_argument("--data_dir", help="TFDS data directory")
    parser.add_argument("--split", default=None, help="split to draw from (default: every piece of --corpus)")
    parser.add_argument("--context", type=int, default=84, help="spectrogram frames")
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--augment", action="store_true", help="apply the training augmentation")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="pairs.png")
    args = parser.parse_args()
    if args.tfds and not args.split:
        args.split = "test"

    pool = load_pool(args)
    rng = np.random.default_rng(args.seed)
    idx = np.sort(rng.choice(len(pool), size=min(args.pairs, len(pool)), replace=False))
    batch = pool.batch(idx, args.context, pool.augmentation(len(idx), rng) if args.augment else None)

    fig, axes = plt.subplots(len(idx), 2, figsize=(9, 2.6 * len(idx)), squeeze=False,
                             gridspec_kw={"width_ratios": [100, 100 * args.context / 84]})
    for row, i in enumerate(idx):
        e = pool.pair_example[i]
        ax_sheet, ax_spec = axes[row]
        ax_sheet.imshow(batch["sheet"][row], cmap="gray", vmin=0, vmax=1)
        ax_sheet.axvline(49.5, color="r", lw=0.8)
        ax_sheet.set_title(f"{pool.example_piece[e]}  x={pool.pair_x[i]:.0f}", fontsize=8)
        ax_spec.imshow(batch["spectrogram"][row], origin="lower", aspect="auto", cmap="viridis")
        ax_spec.axvline(args.context // 2, color="r", lw=0.8)
        perf = pool.example_performance[e].split("_tempo-")[-1]
        ax_spec.set_title(f"tempo-{perf}  onset frame {pool.pair_onset[i]}", fontsize=8)
        for ax in (ax_sheet, ax_spec):
            ax.set_xticks([])
            ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out} ({len(idx)} pairs of {len(pool)})")


if __name__ == "__main__":
    main()
