"""Application-level evaluation: which piece, and where, for 30 s recordings of every test piece.

The sheet database is what `keras-asr index` makes: every test piece's page images unrolled by the application
(staff detection, not the corpus' own system boxes) with a snippet every `--hop` px. Each test performance at
the tempo ratios asked for gives one query: a seeded 30 s clip of its spectrogram. Reported per model and tempo:

- piece top-1 / top-5 among all test pieces, for the sequence matcher of `keras-asr query` (pieces ranked by
  their best monotone path) and for SPEC's plain vote (pieces ranked by the k-NN votes of the same excerpts);
- localisation: for each excerpt of the timeline, the distance between the reported position and the notehead
  sounding at the excerpt's centre (from the corpus alignment); a position on another page or system is a miss;
  the share within 50 px, over all excerpts and over the queries whose piece was found;
- "no match": the share of answers withheld for queries of a piece left out of the database (open set) and
  for noise, against the share withheld for queries of indexed pieces;
- query time (the matching after the excerpts are embedded, and the whole `identify`).

    python examples/evaluate_identification.py --corpus ROOT --model pretrained/bl2_lc_at.keras \
        --model bl1_sc_msmd.keras --out docs/results/identification.json
"""

import argparse
import json
import os
import sys
import time
import zlib

import numpy as np

from keras_asr import audio as audio_lib
from keras_asr import encoding
from keras_asr import identification
from keras_asr import index as index_lib
from keras_asr import library
from keras_asr import matching
from keras_asr import pages as pages_lib
from keras_asr import sheet
from keras_asr.geometry import QUERY_RATES
from tfds_msmd import layout

CLIP_SECONDS = 30.0
WITHIN_PX = 50.0


def test_pieces(root, split):
    """The split's pieces; every built piece when the corpus has no split file yet (a build in progress)."""
    path = layout.find_split_file(root)
    if path is not None:
        return sorted(layout.read_split(path)[split])
    return sorted(d for d in os.listdir(root) if os.path.isdir(os.path.join(root, d, "scores")))


def load_pages(piece_dir):
    from PIL import Image

    folder = layout.score_dir(piece_dir)
    pages = []
    for number in layout.page_numbers(folder):
        with Image.open(os.path.join(folder, "img", f"{number:02d}.png")) as image:
            pages.append(pages_lib.to_page_width(np.asarray(image.convert("L"), np.float32) / 255.0))
    return pages


def build_database(root, pieces, encoders, hop):
    """The sheet index of all pieces, and each piece's `UnrolledScore` and ground-truth noteheads."""
    index = index_lib.SnippetIndex(encoders.model_id)
    scores, heads = {}, {}
    for piece in pieces:
        piece_dir = os.path.join(root, piece)
        scores[piece] = sheet.unroll(load_pages(piece_dir))
        library.add_score(index, encoders, piece, scores[piece], hop=hop)
        folder = layout.score_dir(piece_dir)
        heads[piece] = [h for k, n in enumerate(layout.page_numbers(folder))
                        for h in layout.read_mung(os.path.join(folder, "mung", f"{n:02d}.xml"), k)]
    return index, scores, heads


def sounding_notehead(heads, performance, frame):
    """(page, x, y) of the notehead whose onset is the last at or before `frame`, or None before the first."""
    key = f"{performance}_onset_frame"
    best = None
    for h in heads:
        onset = h.data.get(key)
        if onset is None or int(onset) > frame:
            continue
        if best is None or int(onset) > best[0] or (int(onset) == best[0] and h.x < best[1].x):
            best = (int(onset), h)
    return None if best is None else (best[1].page, best[1].x, best[1].y)


def system_of(score, page, y):
    """The application's system (index on its page) nearest to row `y` of `page`."""
    on_page = [(n, s) for n, s, p in zip(score.system_numbers, score.systems, score.system_pages) if p == page]
    if not on_page:
        return None
    return int(min(on_page, key=lambda item: abs(item[1].centre - y))[0])


def localisation_errors(result, score, heads, performance, offset, positions=None):
    """Distance of each reported position (the timeline, or `positions` in its format) to the sounding notehead."""
    errors = []
    for entry in positions or result["timeline"]:
        frame = offset + int(round(entry["time"] * audio_lib.FPS))
        truth = sounding_notehead(heads, performance, frame)
        if truth is None:
            continue
        page, x, y = truth
        same = entry["page"] - 1 == page and entry["system"] - 1 == system_of(score, page, y)
        errors.append(abs(entry["x"] - x) if same else np.inf)
    return errors


def subset(index, keep):
    """A new index of the rows where `keep` is true."""
    part = index_lib.SnippetIndex(index.model_id)
    part.add(index.embeddings[keep], **{name: values[keep] for name, values in index.metadata.items()})
    return part


def clip_of(spec, piece, performance, seed):
    frames = int(CLIP_SECONDS * audio_lib.FPS)
    rng = np.random.default_rng([seed, zlib.crc32(f"{piece}/{performance}".encode())])
    offset = int(rng.integers(0, max(1, spec.shape[1] - frames + 1)))
    return spec[:, offset:offset + frames], offset


def noise_spectrograms(count, seed):
    """Spectrograms of pink noise: sound with no music in it."""
    rng = np.random.default_rng(seed)
    n = int(CLIP_SECONDS * audio_lib.SAMPLE_RATE)
    specs = []
    for _ in range(count):
        white = np.fft.rfft(rng.standard_normal(n))
        white /= np.sqrt(np.maximum(np.arange(len(white)), 1))
        signal = np.fft.irfft(white, n)
        specs.append(audio_lib.spectrogram((0.3 * signal / np.abs(signal).max()).astype(np.float32)))
    return specs


def evaluate(root, split, model_path, ratios, soundfont, hop, excerpts, k, seed, open_set, noise, smooth, log,
             sliding=True, rates=QUERY_RATES, probe=None, snap_onsets=True, unknown_split=None, unknown_pieces=0):
    encoders = encoding.load_encoders(model=model_path, sliding=sliding)
    pieces = test_pieces(root, split)
    t0 = time.time()
    index, scores, heads = build_database(root, pieces, encoders, hop)
    log(f"{os.path.basename(model_path)}: {len(index)} snippets of {len(pieces)} pieces "
        f"({time.time() - t0:.0f} s)")
    sequences = matching.PieceSequences(index.metadata["piece"], index.metadata["strip_x"])
    report = {"model": model_path, "pieces": len(pieces), "snippets": len(index), "tempo": {}}
    for ratio in ratios:
        rows = []
        for piece in pieces:
            performance = layout.performance_name(piece, ratio, soundfont)
            perf_dir = os.path.join(root, piece, "performances", performance)
            if not os.path.isdir(perf_dir):
                continue
            clip, offset = clip_of(layout.load_spectrogram(perf_dir), piece, performance, seed)
            if clip.shape[1] < encoders.frames:
                continue
            start = time.time()
            result = identification.identify(index, encoders, clip, excerpts, k, sequences, rates, smooth, probe,
                                             snap_onsets)
            done = time.time()
            ranked = [p["piece"] for p in result["pieces"]]
            by_votes = [p["piece"] for p in sorted(result["pieces"], key=lambda p: -p["votes"])]
            errors = localisation_errors(result, scores[piece], heads[piece], performance, offset)
            # SPEC's answer: each excerpt's nearest snippet, wherever it lies.
            nearest = [{**e["hits"][0], "time": t["time"]} for e, t in zip(result["excerpts"], result["timeline"])]
            vote_errors = localisation_errors(result, scores[piece], heads[piece], performance, offset, nearest)
            # The path's own snippet centres, before the line fit (`--smooth 0`), from the winning rate's excerpts.
            starts, queries = identification.embed_excerpts(encoders, clip, excerpts, result["rate"])
            embedded = time.time()
            raw = identification.match_excerpts(index, queries, starts, encoders.frames, k, sequences, smooth=0)
            matched = time.time()
            raw_errors = localisation_errors(raw, scores[piece], heads[piece], performance, offset)
            # The same path and line fit read at each excerpt's centre: what onset snapping changes.
            unsnapped_errors = errors
            if snap_onsets:
                unsnapped = identification.match_excerpts(index, queries, starts, encoders.frames, k, sequences,
                                                          smooth)
                unsnapped_errors = localisation_errors(unsnapped, scores[piece], heads[piece], performance, offset)
            row = {"piece": piece, "rank": ranked.index(piece) + 1, "vote_rank": by_votes.index(piece) + 1,
                   "answered": result["match"]["piece"], "confidence": result["match"]["confidence"],
                   "within": float(np.mean(np.asarray(errors) <= WITHIN_PX)) if errors else 0.0,
                   "median_error": float(np.median(errors)) if errors else float("inf"),
                   "nearest_within": float(np.mean(np.asarray(vote_errors) <= WITHIN_PX)) if vote_errors else 0.0,
                   "raw_within": float(np.mean(np.asarray(raw_errors) <= WITHIN_PX)) if raw_errors else 0.0,
                   "unsnapped_within": (float(np.mean(np.asarray(unsnapped_errors) <= WITHIN_PX))
                                        if unsnapped_errors else 0.0),
                   "rate": result["rate"], "match_s": matched - embedded, "identify_s": done - start}
            if open_set and ratio == 1.0:
                unknown = identification.identify(subset(index, index.metadata["piece"] != piece), encoders, clip,
                                                  excerpts, k, rates=rates, probe=probe)
                row["open_set_answered"] = unknown["match"]["piece"]
                row["open_set_confidence"] = unknown["match"]["confidence"]
            rows.append(row)
            if len(rows) % 25 == 0:
                log(f"  tempo x{ratio}: {len(rows)} queries, top-1 {np.mean([r['rank'] == 1 for r in rows]):.0%}")
        report["tempo"][str(ratio)] = summarise(rows)
        report["tempo"][str(ratio)]["queries"] = rows
        log(f"  tempo x{ratio}: {format_summary(report['tempo'][str(ratio)])}")
    if noise:
        answered = []
        for spec in noise_spectrograms(noise, seed):
            answered.append(identification.identify(index, encoders, spec, excerpts, k, sequences, rates,
                                                    probe=probe)["match"])
        report["noise"] = {"queries": len(answered),
                           "withheld": float(np.mean([m["piece"] is None for m in answered])),
                           "confidence": [m["confidence"] for m in answered]}
        log(f"  noise: {len(answered)} queries, answer withheld for {100 * report['noise']['withheld']:.0f} %")
    if unknown_split and unknown_pieces:
        report["unknown"] = unknown_queries(root, unknown_split, unknown_pieces, index, encoders, excerpts, k,
                                            sequences, rates, probe, seed, log)
        if "1.0" in report["tempo"]:
            report["calibration"] = calibration(report["tempo"]["1.0"]["queries"], report["unknown"]["confidence"])
            for row in report["calibration"]:
                log(f"  confidence >= {row['threshold']:.2f}: known answered right {100 * row['known_right']:.0f} %,"
                    f" wrong {100 * row['known_wrong']:.0f} %; unknown answered {100 * row['unknown_answered']:.1f} %")
    return report


def unknown_queries(root, split, count, index, encoders, excerpts, k, sequences, rates, probe, seed, log):
    """Queries of pieces the index does not hold: a clip of one performance of each of `count` pieces of
    another split (spread over it), for the false-answer rate of the margin rule on many unknown pieces."""
    pieces = test_pieces(root, split)
    pieces = [pieces[i] for i in np.unique(np.linspace(0, len(pieces) - 1, min(count, len(pieces))).astype(int))]
    answered, confidence = [], []
    for n, piece in enumerate(pieces, 1):
        folder = os.path.join(root, piece, "performances")
        performance = sorted(os.listdir(folder))[0]
        clip, _ = clip_of(layout.load_spectrogram(os.path.join(folder, performance)), piece, performance, seed)
        if clip.shape[1] < encoders.frames:
            continue
        match = identification.identify(index, encoders, clip, excerpts, k, sequences, rates, probe=probe)["match"]
        answered.append(match["piece"])
        confidence.append(match["confidence"])
        if n % 25 == 0:
            log(f"  unknown pieces ({split}): {n} of {len(pieces)} queries")
    withheld = float(np.mean([a is None for a in answered])) if answered else float("nan")
    log(f"  unknown pieces ({split}): {len(answered)} queries, answer withheld for {100 * withheld:.1f} %")
    return {"split": split, "queries": len(answered), "withheld": withheld, "confidence": confidence}


CONFIDENCES = (0.4, 0.5, 0.55, 0.6, round(identification.ANSWER_CONFIDENCE, 3), 0.7, 0.8)


def calibration(known_rows, unknown_confidence):
    """What a confidence threshold would do: the share of indexed pieces' queries answered right and wrong, and
    the share of unknown pieces' queries answered, for each threshold of `CONFIDENCES` (the margin rule's own
    among them)."""
    conf = np.array([r["confidence"] for r in known_rows])
    right = np.array([r["rank"] == 1 for r in known_rows])
    unknown = np.asarray(unknown_confidence, np.float64)
    return [{"threshold": round(float(c), 3), "known_right": float(np.mean((conf >= c) & right)),
             "known_wrong": float(np.mean((conf >= c) & ~right)),
             "unknown_answered": float(np.mean(unknown >= c)) if len(unknown) else float("nan")}
            for c in sorted(CONFIDENCES)]


def summarise(rows):
    if not rows:
        return {"n": 0}
    rank = np.array([r["rank"] for r in rows])
    vote_rank = np.array([r["vote_rank"] for r in rows])
    found = rank == 1
    summary = {
        "n": len(rows),
        "top1": float(np.mean(rank == 1)), "top5": float(np.mean(rank <= 5)),
        "vote_top1": float(np.mean(vote_rank == 1)), "vote_top5": float(np.mean(vote_rank <= 5)),
        "within_50px": float(np.mean([r["within"] for r in rows])),
        "within_50px_found": float(np.mean([r["within"] for r, f in zip(rows, found) if f])) if found.any() else 0.0,
        "nearest_within_50px": float(np.mean([r["nearest_within"] for r in rows])),
        "raw_path_within_50px": float(np.mean([r["raw_within"] for r in rows])),
        "unsnapped_within_50px": float(np.mean([r["unsnapped_within"] for r in rows])),
        "withheld_known": float(np.mean([r["answered"] is None for r in rows])),
        "wrong_answer": float(np.mean([r["answered"] not in (None, r["piece"]) for r in rows])),
        "match_ms": 1000 * float(np.median([r["match_s"] for r in rows])),
        "identify_ms": 1000 * float(np.median([r["identify_s"] for r in rows])),
    }
    if "open_set_answered" in rows[0]:
        summary["withheld_unknown"] = float(np.mean([r["open_set_answered"] is None for r in rows]))
    return summary


def format_summary(s):
    if not s.get("n"):
        return "no queries"
    text = (f"n {s['n']}, top-1 {100 * s['top1']:.1f} % / top-5 {100 * s['top5']:.1f} % "
            f"(vote: {100 * s['vote_top1']:.1f} / {100 * s['vote_top5']:.1f}), within 50 px "
            f"{100 * s['within_50px']:.1f} % (found: {100 * s['within_50px_found']:.1f} %; path without line fit: "
            f"{100 * s['raw_path_within_50px']:.1f} %; read at the centres, not the onsets: "
            f"{100 * s['unsnapped_within_50px']:.1f} %; nearest snippet: {100 * s['nearest_within_50px']:.1f} %), "
            f"withheld "
            f"{100 * s['withheld_known']:.0f} %, wrong answer {100 * s['wrong_answer']:.0f} %")
    if "withheld_unknown" in s:
        text += f", unknown piece withheld {100 * s['withheld_unknown']:.0f} %"
    return text + f", match {s['match_ms']:.0f} ms, identify {s['identify_ms']:.0f} ms"


def markdown_table(reports):
    """The README's table: one row per model and tempo."""
    lines = ["| model | tempo | top-1 (vote) | top-5 (vote) | within 50 px (path w/o fit; nearest snippet) | "
             "answer withheld: known / unknown piece / noise | match / identify (ms) |",
             "|---|---|---|---|---|---|---|"]
    for report in reports:
        name = os.path.basename(report["model"])
        noise = report.get("noise", {}).get("withheld")
        for tempo, s in report["tempo"].items():
            if not s.get("n"):
                continue
            unknown = f"{100 * s['withheld_unknown']:.0f} %" if "withheld_unknown" in s else "-"
            noise_text = f"{100 * noise:.0f} %" if noise is not None and tempo == "1.0" else "-"
            lines.append(
                f"| {name} | x{float(tempo):g} | {100 * s['top1']:.1f} % ({100 * s['vote_top1']:.1f}) | "
                f"{100 * s['top5']:.1f} % ({100 * s['vote_top5']:.1f}) | {100 * s['within_50px']:.1f} % "
                f"({100 * s['raw_path_within_50px']:.1f}; {100 * s['nearest_within_50px']:.1f}) | "
                f"{100 * s['withheld_known']:.0f} % / {unknown} / {noise_text} | "
                f"{s['match_ms']:.0f} / {s['identify_ms']:.0f} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", help="corpus root in the MSMD layout (with its split file)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--model", action="append", help=".keras model (repeatable)")
    parser.add_argument("--tempo", type=float, nargs="+", default=[1.0, 0.5, 2.0])
    parser.add_argument("--soundfont", default="MuseScore_General")
    parser.add_argument("--hop", type=int, default=sheet.SNIPPET_HOP)
    parser.add_argument("--no-sliding", action="store_true",
                        help="embed every index snippet alone, never in passes over the strip (Encoders.sheet_at)")
    parser.add_argument("--query-rates", type=float, nargs="+", default=list(QUERY_RATES),
                        help="tempo search of each query (identify's rates; default: the application's, "
                             f"{' '.join(map(str, QUERY_RATES))}; 1: none)")
    parser.add_argument("--probe", type=int, help="choose the tempo search's rate on this many excerpts first "
                        "(identify's probe; default: match every excerpt at every rate)")
    parser.add_argument("--excerpts", type=int, default=100)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--smooth", type=int, default=identification.SMOOTH_EXCERPTS,
                        help="half-width in excerpts of the path's line fit (0: raw snippet centres)")
    parser.add_argument("--no-onset-snap", action="store_true",
                        help="read the path's line at each excerpt's centre, not at its last detected onset")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--noise", type=int, default=10, help="pink-noise queries (0: none)")
    parser.add_argument("--no-open-set", action="store_true", help="skip the left-out-piece queries")
    parser.add_argument("--unknown-split", default=None, metavar="SPLIT",
                        help="query pieces of this split, which the index does not hold (e.g. train), to calibrate "
                             "the margin rule on many unknown pieces")
    parser.add_argument("--unknown-pieces", type=int, default=100, help="how many pieces of --unknown-split")
    parser.add_argument("--out", help="JSON file for the full report")
    parser.add_argument("--table", metavar="JSON", help="only print the Markdown table of a written report")
    args = parser.parse_args(argv)
    if args.table:
        with open(args.table) as f:
            print(markdown_table(json.load(f)["reports"]))
        return 0

    def log(line):
        print(line, flush=True)

    if not args.model or not args.corpus:
        parser.error("give --corpus and at least one --model")
    reports = []
    for model in args.model:
        reports.append(evaluate(args.corpus, args.split, model, args.tempo, args.soundfont, args.hop, args.excerpts,
                                args.top, args.seed, not args.no_open_set, args.noise, args.smooth, log,
                                sliding=not args.no_sliding, rates=tuple(args.query_rates), probe=args.probe,
                                snap_onsets=not args.no_onset_snap, unknown_split=args.unknown_split,
                                unknown_pieces=args.unknown_pieces))
        if args.out:  # after every model, so that a long run keeps what it has measured
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as f:
                json.dump({"corpus": os.path.abspath(args.corpus), "split": args.split, "hop": args.hop,
                           "sliding": not args.no_sliding, "query_rates": args.query_rates,
                           "probe": args.probe, "onset_snap": not args.no_onset_snap,
                           "smooth": args.smooth, "tempo": args.tempo, "seed": args.seed,
                           "excerpts": args.excerpts, "seconds": CLIP_SECONDS, "reports": reports}, f, indent=1)
    print(markdown_table(reports))
    return 0


if __name__ == "__main__":
    sys.exit(main())
