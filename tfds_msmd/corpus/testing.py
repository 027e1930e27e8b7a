"""A tiny real corpus for tests: the opening measures of a few Bach chorales, engraved and synthesized.

    from tfds_msmd.corpus.testing import make_tiny_corpus
    root = make_tiny_corpus(tmp_path)   # ~10 s: 2 pieces, 4 measures, 2 renders each
"""

import os

from tfds_msmd.corpus import build, sources

TINY_PIECES = ("bach/bwv269.mxl", "bach/bwv347.mxl", "bach/bwv153.1.mxl", "bach/bwv38.6.mxl",
               "bach/bwv40.6.mxl", "bach/bwv365.mxl")
# TimGM6mb loads fastest; 1.0 and 1.1 give two tempi per piece.
TINY_RENDERS = ((1.00, "TimGM6mb"), (1.10, "TimGM6mb"))


def make_tiny_corpus(root, n_pieces=2, max_measures=4, renders=TINY_RENDERS, keep_audio=False, splits=None,
                     engraving="verovio"):
    """Writes a small real corpus (MSMD layout, `split.yaml`, `corpus.json`) into `root`.

    Pieces are `max_measures`-measure excerpts of Bach chorales, named like the full chorales. The split
    is fixed for tests: the last piece is "test", the one before it "valid" when there are three or more,
    the rest "train". Pieces already in `root` are not rebuilt.

    Args:
        root: output folder (created).
        n_pieces: number of pieces, at most `len(TINY_PIECES)`.
        max_measures: measures per excerpt.
        renders: (tempo ratio, SoundFont) pairs rendered for every piece.
        keep_audio: keep the wav files.
        splits: optional list of split names, one per piece, instead of the default assignment.
        engraving: the engraving setup of every piece (a key of `setups.SETUPS`).

    Returns:
        `root`.
    """
    if not 1 <= n_pieces <= len(TINY_PIECES):
        raise ValueError(f"n_pieces must be in [1, {len(TINY_PIECES)}], got {n_pieces}.")
    if splits is None:
        splits = ["train"] * n_pieces
        splits[-1] = "test" if n_pieces > 1 else "train"
        if n_pieces >= 3:
            splits[-2] = "valid"
    jobs = [
        build.Job(sources.Source(sources.piece_name(path, "chorale"), path, max_measures), split, tuple(renders),
                  engraving)
        for path, split in zip(TINY_PIECES[:n_pieces], splits)
    ]
    results = build.build_corpus(os.fspath(root), "tiny", workers=1, keep_audio=keep_audio, jobs=jobs, log=None)
    failed = [r for r in results if r.status == "failed"]
    if failed:
        raise RuntimeError(f"Tiny corpus build failed: {failed}")
    return root
