"""Latency of `keras-asr query`: one 30 s recording against a sheet index of up to a million snippets.

    python benchmarks/query_latency.py [--model pretrained/bl2_lc_at.keras] [--rows 1000000] [--repeat 5]

The query is real music: the spectrograms of the committed fixture performances (tfds_msmd/msmd/dummy_data)
joined to 30 s. The index holds the real snippets of the fixture pages plus filler rows up to `--rows`: unit
vectors drawn at random, grouped into pieces of `--piece-snippets` snippets in strip order. Random filler is
the hardest case for the approximate search and changes nothing in the amount of work per query, which is what
is timed. Reported (median of `--repeat` runs): embedding the excerpts, the k-NN search, the sequence matching,
and `identify` end to end; the approximate index is built before timing (its build time is reported apart).
Writes benchmarks/results/query_latency_<backend>.json.
"""

import argparse
import glob
import json
import os
import time

import keras
import numpy as np

from keras_asr import encoding
from keras_asr import geometry
from keras_asr import identification
from keras_asr import index as index_lib
from keras_asr import library
from keras_asr import matching
from keras_asr import recordings
from keras_asr import windows
from keras_asr.testing import fixture_root

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUERY_FRAMES = 600  # 30 s at 20 frames per second


def query_spectrogram():
    specs = [np.load(p) for p in sorted(glob.glob(os.path.join(fixture_root(), "*", "performances", "*",
                                                                 "features", "*_spec.npy")))]
    joined = np.concatenate(specs, axis=1)
    while joined.shape[1] < QUERY_FRAMES:
        joined = np.concatenate([joined, joined], axis=1)
    return joined[:, :QUERY_FRAMES].astype(np.float32)


def filled_index(encoders, rows, piece_snippets, seed=0):
    pages = sorted(glob.glob(os.path.join(fixture_root(), "*", "scores", "*", "img", "*.png")))
    index, _, _ = library.index_scores(encoders, pages)
    filler = rows - len(index)
    if filler > 0:
        rng = np.random.default_rng(seed)
        x = np.arange(filler) % piece_snippets
        index.add(rng.standard_normal((filler, index.dim)).astype(np.float32),
                  piece=np.char.add("filler", (np.arange(filler) // piece_snippets).astype(str)),
                  page=np.zeros(filler), system=x // 15, page_x=25 + 50 * (x % 15), strip_x=25 + 50 * x,
                  **({"measure": np.full(filler, "")} if "measure" in index.metadata else {}))
    return index


def median_time(fn, repeat):
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), result


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(REPO, "pretrained", "bl2_lc_at.keras"))
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--piece-snippets", type=int, default=300)
    parser.add_argument("--excerpts", type=int, default=100)
    parser.add_argument("--method", default="auto", choices=index_lib.METHODS)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rates", type=float, nargs="+", default=list(geometry.QUERY_RATES),
                        help="the tempo search of `identify` (as `keras-asr query --rates`; 1: none)")
    parser.add_argument("--out", help="JSON file (default: results/query_latency_<backend>.json)")
    args = parser.parse_args()
    encoders = encoding.load_encoders(model=args.model)
    spec = query_spectrogram()
    index = filled_index(encoders, args.rows, args.piece_snippets)
    index.method = args.method
    start = time.perf_counter()
    index.prepare()
    build_s = time.perf_counter() - start
    start = time.perf_counter()
    sequences = matching.PieceSequences(index.metadata["piece"], index.metadata["strip_x"])
    group_s = time.perf_counter() - start

    starts = recordings.excerpt_starts(spec.shape[1], encoders.frames, args.excerpts)
    excerpts = windows.excerpts(spec, np.asarray(starts) + encoders.frames // 2, encoders.frames)
    encoders.audio(excerpts)  # warm-up
    embed_s, queries = median_time(lambda: encoders.audio(excerpts), args.repeat)
    search_s, _ = median_time(lambda: index.search(queries), args.repeat)
    match_s, _ = median_time(
        lambda: identification.match_excerpts(index, queries, starts, encoders.frames, sequences=sequences),
        args.repeat)
    total_s, result = median_time(lambda: identification.identify(index, encoders, spec, args.excerpts,
                                                             sequences=sequences, rates=tuple(args.rates)),
                                  args.repeat)
    record = {
        "backend": keras.backend.backend(),
        "model": os.path.relpath(args.model, REPO),
        "rows": len(index),
        "pieces": len(sequences),
        "excerpts": len(starts),
        "search_method": index.search_method(),
        "load_average_1min": os.getloadavg()[0],
        "index_build_s": build_s,
        "piece_grouping_s": group_s,
        "embed_excerpts_s": embed_s,
        "knn_search_s": search_s,
        "match_s": match_s,
        "rates": args.rates,
        "probe": identification.PROBE_EXCERPTS if len(index) > identification.DENSE_ROWS else None,
        "identify_s": total_s,
        "best_piece": result["pieces"][0]["piece"],
    }
    out = args.out or os.path.join(RESULTS, f"query_latency_{record['backend']}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(record, f, indent=2)
    print(f"{len(index)} snippets ({record['search_method']}, built in {build_s:.1f} s; pieces grouped in "
          f"{group_s:.1f} s), {len(starts)} excerpts of a 30 s query, {record['backend']}: embed {embed_s:.3f} s, "
          f"k-NN {search_s:.3f} s, match (k-NN + sequence alignment) {match_s:.3f} s, identify end to end "
          f"with {len(args.rates)} tempo rate(s) {total_s:.3f} s; load {record['load_average_1min']:.1f}")


if __name__ == "__main__":
    main()
