"""The paper's evaluation: Table 2 on the fixed test set, Table 3 on the tempo renders, attention statistics.

Example:

```python
pool = keras_asr.data.PairPool.from_tfds("test", name="msmd/small")
results = keras_asr.evaluation.evaluate_model(model, pool)          # both directions
tempo = keras_asr.evaluation.evaluate_tempo(model, keras_asr.evaluation.tempo_pools("msmd/small"))
```
"""

import json
import os
import sys
import time

import numpy as np

from keras_asr import geometry
from keras_asr import metrics
from keras_asr import sources
from keras_asr.data import EVAL_PAIRS
from keras_asr.data import PairPool


def embed_pairs(model, pool, indices=None, batch_size=100, chunk=2000):
    """(sheet, audio) embeddings of pool pairs (the fixed evaluation set by default), inference CCA stats.

    Returns:
        Two float32 arrays (n, 32), unit norm, row i of each from the same pair.
    """
    indices = pool.eval_indices() if indices is None else np.asarray(indices)
    sheet, audio = [], []
    for start in range(0, len(indices), chunk):
        out = model.predict(pool.batch(indices[start:start + chunk], model.frames), batch_size=batch_size,
                            verbose=0)
        sheet.append(out["sheet_embedding"])
        audio.append(out["audio_embedding"])
    return np.concatenate(sheet), np.concatenate(audio)


def evaluate_model(model, pool, n=EVAL_PAIRS, batch_size=100):
    """Table 2 metrics of `model` on the first-`n` fixed evaluation pairs of `pool`, both directions."""
    sheet, audio = embed_pairs(model, pool, pool.eval_indices(n), batch_size)
    return metrics.evaluate_retrieval(sheet, audio)


def tempo_pools(name="msmd/small", split="test_tempo", data_dir=None):
    """{tempo ratio: PairPool} of a TFDS split with renders at several tempi (the paper's Table 3)."""
    by_ratio = sources.by_tempo(sources.load_tfds(name, split, data_dir))
    return {r: PairPool(examples) for r, examples in by_ratio.items()}


def corpus_pools(root, split="test", soundfont=None):
    """{tempo ratio: PairPool} of a split of a corpus folder in the MSMD layout, read directly (no TFDS build).

    Args:
        root: corpus root with its split file (an offline corpus build or an unpacked MSMD).
        split: "train", "valid" or "test".
        soundfont: keep only performances rendered with this SoundFont (None: all).
    """
    by_ratio = sources.by_tempo(sources.read_corpus(root, split), soundfont)
    if not by_ratio:
        raise ValueError(f"The {split} split of {root} holds no performance" + (f" with {soundfont}." if soundfont
                                                                                 else "."))
    return {r: PairPool(records) for r, records in by_ratio.items()}


def evaluate_tempo(model, pools, n=EVAL_PAIRS, batch_size=100, on_ratio=None):
    """{tempo ratio: Table 2 metrics}: each tempo's renders retrieve among themselves, as in Table 3.

    `on_ratio(ratio, metrics)` is called as each ratio is done (progress of a long evaluation).
    """
    results = {}
    for ratio, pool in pools.items():
        results[ratio] = evaluate_model(model, pool, n, batch_size)
        if on_ratio is not None:
            on_ratio(ratio, results[ratio])
    return results


def attention_entropy(weights):
    """Entropy (nats) of each row of attention weights (B, C); uniform attention gives log(C)."""
    w = np.clip(np.asarray(weights, np.float64), 1e-12, None)
    return -(w * np.log(w)).sum(axis=-1)


def onsets_in_excerpt(pool, indices, context):
    """Number of distinct onset frames of the pair's performance inside each pair's excerpt window (the x-axis
    of Figure 4). A chord is one onset, however many noteheads (pairs) it has.

    The window of an excerpt around onset frame o is frames [o - C//2, o - C//2 + C).
    """
    indices = np.asarray(indices)
    counts = np.empty(len(indices), np.int64)
    frames = {}
    for j, i in enumerate(indices):
        e = pool.pair_example[i]
        if e not in frames:
            frames[e] = np.unique(pool.pair_onset[pool.pair_example == e])  # sorted, one per onset
        onsets = frames[e]
        lo = pool.pair_onset[i] - context // 2
        counts[j] = np.searchsorted(onsets, lo + context) - np.searchsorted(onsets, lo)
    return counts


def attention_statistics(model, pool, indices=None, batch_size=100):
    """(entropy, onset count, weights) of the attention over the evaluation excerpts of `pool` (Figure 4)."""
    indices = pool.eval_indices() if indices is None else np.asarray(indices)
    spec = pool.batch(indices, model.frames)["spectrogram"]
    weights = np.asarray(model.audio_tower.attention_model.predict(spec, batch_size=batch_size, verbose=0))
    return attention_entropy(weights), onsets_in_excerpt(pool, indices, model.frames), weights


def snippet_spans(pool, width=None, window=None, step=5):
    """How many audio frames the music of a sheet snippet lasts: the snippet's width over the local score speed.

    For every `step`-th pair (in time order within its performance), a line is fitted to the strip x of the
    noteheads sounding within `window` frames of its onset; `width` px over its slope (px per frame) is the
    span. Windows where the score jumps back (a repeat) or stands still are skipped.

    Args:
        pool: a PairPool (or anything with `pair_example`, `pair_onset`, `pair_x`).
        width: snippet width in px (default: `geometry.SNIPPET_WINDOW[1]`).
        window: half-width in frames of the fit (default: half the long context).

    Returns:
        float array of spans in frames.
    """
    width = geometry.SNIPPET_WINDOW[1] if width is None else width
    window = geometry.CONTEXTS["LC"] // 2 if window is None else window
    spans = []
    for e in np.unique(pool.pair_example):
        order = np.flatnonzero(pool.pair_example == e)
        order = order[np.argsort(pool.pair_onset[order], kind="stable")]
        onset, x = pool.pair_onset[order].astype(np.float64), pool.pair_x[order].astype(np.float64)
        for i in range(0, len(onset), step):
            # The onsets are sorted: the fit's pairs are one slice.
            lo = np.searchsorted(onset, onset[i] - window, "left")
            hi = np.searchsorted(onset, onset[i] + window, "right")
            a, b = onset[lo:hi], x[lo:hi]
            if np.ptp(a) == 0 or np.any(np.diff(b) < -width):  # a chord alone, or a jump back
                continue
            slope = np.polyfit(a, b, 1)[0]
            if slope > 0:
                spans.append(width / slope)
    return np.asarray(spans)


def attention_by_tempo(model, pools, n=2000, centre=None, batch_size=100):
    """How the attention responds to tempo: the same measures over the excerpts of each tempo render.

    A tempo-invariant attention widens when the music is played slowly (an excerpt then holds less of the
    score's snippet) and narrows when it is played fast, as in the paper's Figures 2/3.

    Args:
        model: a model with attention.
        pools: {tempo ratio: PairPool} (`tempo_pools`, `corpus_pools`).
        n: excerpts per ratio (`pool.eval_indices(n)`: the same notes in renders of equal length).
        centre: frames of the central window whose share of the weight is reported (default: the short
            context, `geometry.CONTEXTS["SC"]`).

    Returns:
        {ratio: {"n", "entropy" (mean nats), "width" (mean exp(entropy), the effective number of frames
        attended), "centre", "centre_share" (mean weight in the central `centre` frames), "profile" (mean
        weights, (C,))}}.
    """
    centre = geometry.CONTEXTS["SC"] if centre is None else centre
    out = {}
    for ratio, pool in sorted(pools.items()):
        entropy, _, weights = attention_statistics(model, pool, pool.eval_indices(n), batch_size)
        lo = (weights.shape[1] - centre) // 2
        out[ratio] = {"n": len(entropy), "entropy": float(entropy.mean()), "width": float(np.exp(entropy).mean()),
                      "centre": centre, "centre_share": float(weights[:, lo:lo + centre].sum(1).mean()),
                      "profile": weights.mean(0)}
    return out


def evaluate_runs(runs, dataset="msmd/small", split="test", tempo_split="test_tempo", pairs=EVAL_PAIRS,
                  data_dir=None, corpus=None, soundfont=None, log=sys.stderr):
    """Table 2 (both directions, unrefined and refined CCA) and Table 3 for training runs.

    A line per model and table goes to `log` as each is done (an evaluation of several runs takes minutes).

    Args:
        runs: {name: folder written by `training.train`} (`model.keras`, optionally `model_unrefined.keras`), or
            {name: a `.keras` file} (refined only).
        dataset: TFDS name with the test and tempo splits.
        split: the Table 2 split.
        tempo_split: the Table 3 split ("" or None: no Table 3).
        pairs: size of the fixed test set.
        data_dir: TFDS data directory.
        corpus: a corpus root to read instead of `dataset` (`corpus_pools`): Table 2 on the tempo-1.0
            performances of `split`, Table 3 on all its tempo ratios (if `tempo_split`).
        soundfont: with `corpus`, keep only the performances of this sound (e.g. "SampledPiano-p0-expr").
        log: a text stream for progress, or None.

    Returns:
        (text, results): the tables as Markdown, and the numbers as a JSON-ready dict.
    """
    from keras_asr.saving import load_model

    if corpus:
        tempo = corpus_pools(corpus, split, soundfont)
        if 1.0 not in tempo:
            raise ValueError(f"The {split} split of {corpus} has no performance at tempo 1.0 for Table 2.")
        pool, dataset = tempo[1.0], corpus
        tempo = tempo if tempo_split and len(tempo) > 1 else {}
    else:
        pool = PairPool.from_tfds(split, name=dataset, data_dir=data_dir)
        tempo = tempo_pools(dataset, tempo_split, data_dir) if tempo_split else {}
    n = len(pool.eval_indices(pairs))
    start = time.time()

    def report(name, what, results):
        if log is not None:
            mrr = "; ".join(f"{d.replace('2', ' -> ')} MRR {r['MRR']:.3f}" for d, r in results.items())
            print(f"[{time.time() - start:6.0f} s] {name}, {what}: {mrr}", file=log, flush=True)

    table2a, table2b, table3 = {}, {}, {}
    for name, folder in runs.items():
        unrefined = os.path.join(folder, "model_unrefined.keras")
        if os.path.isdir(folder) and os.path.exists(unrefined):
            table2a[name] = evaluate_model(load_model(unrefined), pool, pairs)
            report(name, "Table 2, unrefined CCA", table2a[name])
        model = load_model(folder if folder.endswith(".keras") else os.path.join(folder, "model.keras"))
        table2b[name] = evaluate_model(model, pool, pairs)
        report(name, "Table 2, refined CCA", table2b[name])
        if tempo:
            table3[name] = evaluate_tempo(
                model, tempo, pairs,
                on_ratio=lambda ratio, r, name=name: report(
                    name, f"Table 3, tempo x{ratio:g}", {"audio2sheet": r["audio2sheet"]}))

    sound = f", sound {soundfont}" if corpus and soundfont else ""
    text = [f"Test set: {dataset} split {split}{sound}, {n} pairs ({n} candidates).", ""]
    for direction in metrics.DIRECTIONS:
        arrow = direction.replace("2", " -> ")
        if table2a:
            text += [metrics.format_table2(table2a, direction, f"Table 2a ({arrow}, no CCA refinement)"), ""]
        text += [metrics.format_table2(table2b, direction, f"Table 2b ({arrow}, refined CCA)"), ""]
    if table3:
        sizes = ", ".join(f"{r:g}: {len(p.eval_indices(pairs))}" for r, p in tempo.items())
        text += [metrics.format_table3(table3), "", f"Pairs per tempo ratio: {sizes}.", ""]
    results = {"dataset": dataset, "split": split, "soundfont": soundfont if corpus else None, "pairs": n,
               "table2a": table2a, "table2b": table2b,
               "table3": {k: {str(r): v for r, v in t.items()} for k, t in table3.items()}}
    return "\n".join(text), results


def _at_least_one(text):
    import argparse

    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1 pair, got {text}")
    return value


def add_arguments(parser):
    """The arguments of `examples/evaluate.py` and `keras-asr evaluate`."""
    parser.add_argument("--run", action="append", required=True, metavar="NAME=DIR",
                        help="a training run folder, or a .keras model, named for the tables (repeatable)")
    parser.add_argument("--dataset", default="msmd/small", help="TFDS name (test and test_tempo splits)")
    parser.add_argument("--corpus", default=None, metavar="ROOT",
                        help="read a corpus folder (MSMD layout) instead of --dataset: Table 2 on its tempo-1.0 "
                             "performances of --split, Table 3 on all its tempo ratios")
    parser.add_argument("--soundfont", default=None, metavar="SOUND",
                        help="with --corpus: only the performances of this sound (default: all)")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: TFDS's)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--tempo-split", default="test_tempo", help="'' to skip Table 3")
    parser.add_argument("--pairs", type=_at_least_one, default=EVAL_PAIRS, help="size of the fixed test set")
    parser.add_argument("--out", default=None, help="write the tables (Markdown) here, and the numbers as .json")
    return parser


def evaluate_from_arguments(args):
    """Runs `evaluate_runs` on parsed `add_arguments` arguments; prints the tables and writes `--out`."""
    runs = {}
    for spec in args.run:
        name, sep, folder = spec.partition("=")
        if not sep or not name:
            raise ValueError(f"--run takes NAME=DIR, got {spec!r}.")
        if folder.endswith(".keras"):
            if not os.path.isfile(folder):
                raise FileNotFoundError(f"No model file {folder}.")
        elif not os.path.isfile(os.path.join(folder, "model.keras")):
            raise FileNotFoundError(f"No model.keras in {folder} (a folder written by training).")
        runs[name] = folder
    text, results = evaluate_runs(runs, args.dataset, args.split, args.tempo_split, args.pairs, args.data_dir,
                                  args.corpus, args.soundfont)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text)
        with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
            json.dump(results, f, indent=1)
    return results
