"""Piece identification from Python: index a few scores, identify a recording, print where its excerpts lie.

The same as `keras-asr index` + `keras-asr query`, through `keras_asr.retrieval`:

    python examples/query_recording.py --model bl1_sc_msmd.keras --recording take1.flac scores/*.musicxml
"""

import argparse

from keras_asr import retrieval


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="a keras-asr .keras model")
    p.add_argument("--recording", required=True, help="audio file to identify")
    p.add_argument("--top", type=int, default=25, help="snippets retrieved per excerpt")
    p.add_argument("scores", nargs="+", help="score files, PDFs or page images; one piece each")
    a = p.parse_args(argv)

    encoders = retrieval.load_encoders(model=a.model)
    index, _, _ = retrieval.index_scores(encoders, a.scores, log=print)
    spec = retrieval.load_spectrogram(a.recording, encoders.frames)
    result = retrieval.identify(index, encoders, spec, excerpts=100, k=a.top)
    for entry in result["pieces"][:5]:
        print(f"{entry['piece']:<30s} {entry['votes']:5d} votes")
    for excerpt in result["excerpts"][::10]:
        hit = excerpt["hits"][0]
        print(f"{excerpt['start']:6.2f} s -> {hit['piece']} page {hit['page']} system {hit['system']} x {hit['x']:.0f}")


if __name__ == "__main__":
    main()
