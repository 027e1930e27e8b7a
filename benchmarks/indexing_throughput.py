"""Indexing throughput of `keras-asr index`: score pages -> staff systems -> snippets -> embeddings (snippets/s).

    python benchmarks/indexing_throughput.py [--model pretrained/bl2_lc_at.keras] [--hop 50] [--repeat 10]

Pages are the engraved pages of the committed fixture corpus (tfds_msmd/msmd/dummy_data), each indexed
`--repeat` times. Reports the whole pipeline and its two parts: preparing snippets (page loading, staff-system
detection, unrolling, cutting) and embedding them with the sheet encoder. Writes
benchmarks/results/indexing_throughput_<backend>.json.
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
    parser.add_argument("--model", default=os.path.join(REPO, "pretrained", "bl2_lc_at.keras"))
    parser.add_argument("--hop", type=int, default=sheet.SNIPPET_HOP)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    encoders = encoding.load_encoders(model=args.model)
    pages = sorted(glob.glob(os.path.join(fixture_root(), "*", "scores", "*", "img", "*.png"))) * args.repeat
    encoders.sheet(windows.snippets(sheet.unroll(pages_lib.load_pages(pages[0])).strip, [100]))  # warm-up

    start = time.perf_counter()
    prepared = []
    for path in pages:
        score = sheet.unroll(pages_lib.load_pages(path))
        prepared.append(windows.snippets(score.strip, sheet.snippet_centres(score.width, args.hop)))
    prepare_s = time.perf_counter() - start
    start = time.perf_counter()
    for snippets in prepared:
        encoders.sheet(snippets)
    embed_s = time.perf_counter() - start
    start = time.perf_counter()
    index, _, _ = library.index_scores(encoders, pages, hop=args.hop)
    total_s = time.perf_counter() - start

    n = len(index)
    record = {
        "backend": keras.backend.backend(),
        "model": os.path.relpath(args.model, REPO),
        "pages": len(pages),
        "snippets": n,
        "hop": args.hop,
        "load_average_1min": os.getloadavg()[0],
        "prepare_snippets_per_s": n / prepare_s,
        "embed_snippets_per_s": n / embed_s,
        "index_snippets_per_s": n / total_s,
    }
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, f"indexing_throughput_{record['backend']}.json"), "w") as f:
        json.dump(record, f, indent=2)
    print(
        f"{n} snippets from {len(pages)} pages (hop {args.hop} px), {record['backend']}: "
        f"prepare {record['prepare_snippets_per_s']:.0f}/s, embed {record['embed_snippets_per_s']:.0f}/s, "
        f"index_scores end to end {record['index_snippets_per_s']:.0f} snippets/s"
    )


if __name__ == "__main__":
    main()
