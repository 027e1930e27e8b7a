"""Indexing throughput of `keras-asr index`: score pages -> staff systems -> snippets -> embeddings (snippets/s).

    python benchmarks/indexing_throughput.py [--model pretrained/varied_bl2_sc.keras] [--pages GLOB] [--hop 16]

Pages are the engraved pages of the committed fixture corpus (tfds_msmd/msmd/dummy_data; tiny crops) or any
page images (`--pages`, e.g. a corpus' full pages), each indexed as one piece, `--repeat` times. Reports the
whole pipeline (`library.index_scores`) and its parts: pages -> strips (loading, staff-system detection,
unrolling), and the two ways of embedding: cutting every snippet and running the sheet encoder on each, or
`Encoders.sheet_at`, which for the paper's encoder on a 16 or 32 px grid passes over the whole strip
(`SlidingSheetEncoder`). Writes benchmarks/results/indexing_throughput_<backend>.json (or --out).
"""

import argparse
import glob
import json
import os
import time

import keras

from keras_asr import encoding
from keras_asr import library
from keras_asr import pages as pages_lib
from keras_asr import sheet
from keras_asr import windows
from keras_asr.testing import fixture_root

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=os.path.join(REPO, "pretrained", "varied_bl2_sc.keras"))
    parser.add_argument("--pages", default=os.path.join(fixture_root(), "*", "scores", "*", "img", "*.png"),
                        help="glob of page images, each indexed as one piece (default: the fixture's pages)")
    parser.add_argument("--hop", type=int, default=sheet.SNIPPET_HOP)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--out", help="JSON file (default: results/indexing_throughput_<backend>.json)")
    args = parser.parse_args()
    encoders = encoding.load_encoders(model=args.model)
    pages = sorted(glob.glob(args.pages)) * args.repeat
    if not pages:
        parser.error(f"no page matches {args.pages}")
    warm = sheet.unroll(pages_lib.load_pages(pages[0]))
    encoders.sheet(windows.snippets(warm.strip, [100]))  # warm-up of both paths
    encoders.sheet_at(warm.strip, sheet.snippet_centres(warm.width, args.hop))

    start = time.perf_counter()
    scores = [sheet.unroll(pages_lib.load_pages(path)) for path in pages]
    unroll_s = time.perf_counter() - start
    centres = [sheet.snippet_centres(score.width, args.hop) for score in scores]
    start = time.perf_counter()
    cut = [windows.snippets(score.strip, x) for score, x in zip(scores, centres)]
    cut_s = time.perf_counter() - start
    start = time.perf_counter()
    for snippets in cut:
        encoders.sheet(snippets)
    per_snippet_s = time.perf_counter() - start
    start = time.perf_counter()
    for score, x in zip(scores, centres):
        encoders.sheet_at(score.strip, x)
    sheet_at_s = time.perf_counter() - start
    start = time.perf_counter()
    index, _, _ = library.index_scores(encoders, pages, hop=args.hop)
    total_s = time.perf_counter() - start

    n = len(index)
    record = {
        "backend": keras.backend.backend(),
        "model": os.path.relpath(args.model, REPO),
        "pages": len(pages),
        "strip_px": int(sum(score.width for score in scores)),
        "snippets": n,
        "hop": args.hop,
        "load_average_1min": os.getloadavg()[0],
        "unroll_snippets_per_s": n / unroll_s,
        "cut_snippets_per_s": n / cut_s,
        "embed_per_snippet_snippets_per_s": n / per_snippet_s,
        "embed_sheet_at_snippets_per_s": n / sheet_at_s,
        "sheet_at_path": "sliding" if encoders.uses_sliding(centres[0]) else "per snippet",
        "index_snippets_per_s": n / total_s,
    }
    out = args.out or os.path.join(RESULTS, f"indexing_throughput_{record['backend']}.json")
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    with open(out, "w") as f:
        json.dump(record, f, indent=2)
    print(
        f"{n} snippets from {len(pages)} pages (hop {args.hop} px), {record['backend']}: "
        f"pages -> strips {record['unroll_snippets_per_s']:.0f}/s; embedding cut snippets "
        f"{record['cut_snippets_per_s']:.0f}/s (cutting) and {record['embed_per_snippet_snippets_per_s']:.0f}/s "
        f"(encoder); embedding from the strip ({record['sheet_at_path']}) "
        f"{record['embed_sheet_at_snippets_per_s']:.0f}/s; "
        f"index_scores end to end {record['index_snippets_per_s']:.0f} snippets/s"
    )


if __name__ == "__main__":
    main()
