"""Statistics of a built corpus: pieces, composers, hours of audio, pairs and SoundFonts per split; the mix.

A pair is one unique onset frame of one performance (as the reader pairs them). The test split is counted
twice: its test performance (tempo 1.0) and all its tempo-robustness renders. The mix is the share of the
training pairs by collection, engraving setup and performance style (sound), from `corpus.json`.

    python -m tfds_msmd.corpus.stats /data/msmd_offline
    # the training performances of one engraving setup, for `keras-asr train --train-performances` (an ablation):
    python -m tfds_msmd.corpus.stats /data/msmd_offline --select engraving=verovio
"""

import argparse
import collections
import json
import os
import re
import subprocess
import sys

import numpy as np

from tfds_msmd import layout


def corpus_stats(root):
    """Counts a built corpus (its `split.yaml` and `corpus.json`).

    Returns:
        A dict: per split ("train", "valid", "test", "test_tempo") the number of pieces, composers,
        performances, hours of audio, pairs and the SoundFonts; plus "disk_gb", the size of `root`.
    """
    split = layout.read_split(root)
    with open(os.path.join(root, "corpus.json")) as f:
        meta = json.load(f)
    test_performance = meta["test_performance"]
    out = {}
    mix = {"collection": collections.Counter(), "engraving": collections.Counter(), "sound": collections.Counter()}
    for name, pieces in list(split.items()) + [("test_tempo", split["test"])]:
        counts = collections.Counter()
        fonts, composers = set(), set()
        for piece in pieces:
            composers.add(piece.split("__")[0])
            for perf in layout.performance_names(os.path.join(root, piece)):
                if name == "test" and not perf.endswith(test_performance):
                    continue
                features = os.path.join(root, piece, "performances", perf, "features")
                frames = np.load(os.path.join(features, f"{piece}_spec.npy"), mmap_mode="r").shape[1]
                onsets = np.load(os.path.join(features, f"{piece}_onsets.npy"))
                counts["performances"] += 1
                counts["hours"] += frames / 20 / 3600
                counts["pairs"] += len(np.unique(onsets))
                fonts.add(layout.parse_performance_name(perf)[1])
                if name == "train":
                    pairs = len(np.unique(onsets))
                    mix["collection"][meta.get("collections", {}).get(piece, piece.split("__")[0])] += pairs
                    mix["engraving"][meta.get("engravings", {}).get(piece, "verovio")] += pairs
                    mix["sound"][layout.parse_performance_name(perf)[1]] += pairs
        out[name] = {"pieces": len(pieces), "composers": len(composers), "performances": counts["performances"],
                     "hours": round(counts["hours"], 2), "pairs": counts["pairs"], "soundfonts": sorted(fonts)}
    du = subprocess.run(["du", "-sk", os.fspath(root)], capture_output=True, text=True).stdout.split()
    out["disk_gb"] = round(int(du[0]) / 2**20, 2) if du else None
    total = sum(mix["collection"].values()) or 1
    out["mix"] = {k: {name: round(n / total, 4) for name, n in c.most_common()} for k, c in mix.items()}
    return out


def selection_regex(root, kind, values):
    """A `keras-asr train --train-performances` regex that keeps the training pieces of the given engraving
    setups or collections (`kind`: "engraving" or "collection", as `corpus.json` records them per piece).

    Returns:
        (regex, pieces): the regex matches "PIECE/PERFORMANCE" names of the chosen pieces only.
    """
    with open(os.path.join(root, "corpus.json")) as f:
        meta = json.load(f)
    table = meta.get(f"{kind}s")
    if table is None:
        raise ValueError(f"{root}/corpus.json records no {kind}s (it has: {', '.join(sorted(meta))}).")
    training = set(layout.read_split(root)["train"])
    pieces = sorted(p for p, value in table.items() if value in values and p in training)
    if not pieces:
        known = ", ".join(sorted(set(table.values())))
        raise ValueError(f"No training piece has {kind} {', '.join(values)}; the corpus has: {known}.")
    return "^(" + "|".join(re.escape(p) for p in pieces) + ")/", pieces


def main(argv=None):
    parser = argparse.ArgumentParser(description="Prints the statistics of a built corpus.")
    parser.add_argument("root")
    parser.add_argument("--select", metavar="KIND=VALUE[,VALUE]",
                        help="print only a --train-performances regex for the training pieces of these engraving "
                             "setups or collections (e.g. engraving=verovio, collection=chorales,keyboard)")
    args = parser.parse_args(argv)
    if args.select:
        kind, _, values = args.select.partition("=")
        if kind not in ("engraving", "collection") or not values:
            parser.error("--select takes engraving=VALUE[,VALUE] or collection=VALUE[,VALUE]")
        try:
            regex, pieces = selection_regex(args.root, kind, values.split(","))
        except ValueError as e:
            parser.error(str(e))
        print(f"{len(pieces)} training pieces", file=sys.stderr)
        print(regex)
        return
    stats = corpus_stats(args.root)
    print("| split | pieces | composers | performances | hours | pairs | SoundFonts |")
    print("|---|---|---|---|---|---|---|")
    for name in ("train", "valid", "test", "test_tempo"):
        s = stats[name]
        print(f"| {name} | {s['pieces']} | {s['composers']} | {s['performances']} | {s['hours']} | {s['pairs']} "
              f"| {', '.join(s['soundfonts'])} |")
    print(f"disk: {stats['disk_gb']} GB")
    for kind, shares in stats["mix"].items():
        print(f"training pairs by {kind}: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in shares.items()))


if __name__ == "__main__":
    main()
