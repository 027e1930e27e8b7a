"""Statistics of a built corpus: pieces, composers, hours of audio, pairs and SoundFonts per split; the mix.

A pair is one unique onset frame of one performance (as the reader pairs them). The test split is counted
twice: its test performance (tempo 1.0) and all its tempo-robustness renders. The mix is the share of the
training pairs by collection, engraving setup and performance style (sound), from `corpus.json`.

    python -m tfds_msmd.corpus.stats /data/msmd_offline
"""

import argparse
import collections
import json
import os
import subprocess

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


def main(argv=None):
    parser = argparse.ArgumentParser(description="Prints the statistics of a built corpus.")
    parser.add_argument("root")
    args = parser.parse_args(argv)
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
