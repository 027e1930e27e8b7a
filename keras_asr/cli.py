"""The `keras-asr` command line: index scores, identify recordings, locate sheet music in recordings.

    keras-asr train --context LC --attention --dataset msmd/full --output runs/bl2_lc_at
    keras-asr evaluate --dataset msmd/full --run BL2-LC+AT=runs/bl2_lc_at --out runs/tables.md
    keras-asr convert params_all_split_mutopia_full_aug.pkl bl1_sc_msmd.keras
    keras-asr index --model bl1_sc_msmd.keras scores/*.pdf scores/*.musicxml --out library.index
    keras-asr query --index library.index take1.flac --plot take1.png
    keras-asr index-audio --model bl1_sc_msmd.keras recordings/*.flac --out recordings.index
    keras-asr query-sheet --index recordings.index bwv269.musicxml --page 1 --system 2 --x 400

Progress goes to stderr and results to stdout; errors are one line on stderr and exit status 1 (2 for usage,
130 for Ctrl-C). Arguments are checked before any work starts, and an index is written atomically: an
interrupted or failed write leaves the folder's previous index as it was.
"""

import argparse
import json
import os
import sys

from keras_asr import evaluation
from keras_asr import index_backends
from keras_asr import training
from keras_asr.geometry import QUERY_RATES
from keras_asr.geometry import SNIPPET_HOP

PROG = "keras-asr"
TOP_PIECES = 5  # pieces listed by `query`
TIMELINE_LINES = 12  # timeline entries printed by `query`


def _add_model_arguments(parser, required):
    default = "" if required else " (default: the model recorded in the index)"
    group = parser.add_mutually_exclusive_group(required=required)
    group.add_argument("--model", metavar="M.keras", help="a keras-asr .keras model" + default)
    group.add_argument("--saved-model", metavar="DIR", help="a SavedModel export (DIR/audio_encoder/, "
                       "DIR/sheet_encoder/) written by keras_asr.export_encoders" + default)


def _add_out_arguments(parser):
    parser.add_argument("--out", required=True, metavar="INDEX",
                        help="index directory to write (a new or empty folder, or an index of the same kind)")
    parser.add_argument("--overwrite", action="store_true",
                        help="write into a folder that holds something else (or an index of the other kind)")
    parser.add_argument("--backend", default="auto", choices=("auto", *index_backends.BACKENDS),
                        help="how queries search it: exact (brute force), flat (exact, FAISS), hnsw, ivf, ivfpq "
                             "(approximate, FAISS; built now and kept); auto: exact below a million rows, hnsw "
                             "above (default)")


def build_parser():
    parser = argparse.ArgumentParser(prog=PROG, description="Audio-sheet music retrieval with keras-asr.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = commands.add_parser("index", help="index a collection of scores (sheet snippets every --hop px)",
                            description="Embed sheet snippets of page images (PNG/JPEG), PDFs and score files "
                                        "(MusicXML, MEI, Humdrum, ABC; engraved with verovio). Each file is one "
                                        "piece, named after the file.")
    _add_model_arguments(p, required=True)
    p.add_argument("scores", nargs="+", metavar="SCORE", help="page image, PDF or score file")
    _add_out_arguments(p)
    p.add_argument("--hop", type=_positive_int, default=SNIPPET_HOP,
                   help=f"px of unrolled score between snippets ({SNIPPET_HOP})")

    p = commands.add_parser("query", help="identify the piece of a recording and locate its excerpts",
                            description="Cut evenly spaced excerpts from a recording (wav, flac, ogg, mp3), "
                                        "retrieve the --top nearest snippets of each and rank pieces by votes. "
                                        "Pages and systems count from 1.")
    p.add_argument("--index", required=True, help="index directory written by `keras-asr index`")
    p.add_argument("audio", metavar="AUDIO", help="audio file of any length")
    _add_model_arguments(p, required=False)
    p.add_argument("--excerpts", type=_positive_int, default=100, help="evenly spaced excerpts (100)")
    p.add_argument("--top", type=_positive_int, default=25, help="snippets retrieved per excerpt (25)")
    p.add_argument("--rates", type=_positive_float, nargs="+", default=list(QUERY_RATES), metavar="R",
                   help="tempo search: the excerpts are also cut as if the recording played R times as fast, and "
                        "the rate whose best path scores highest answers (default: "
                        f"{' '.join(map(str, QUERY_RATES))}; --rates 1 turns it off)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")
    p.add_argument("--plot", metavar="FILE", help="draw the path through the best piece's pages (PNG, PDF, SVG)")
    p.add_argument("--video", metavar="FILE", help="write a score-following video with the recording's sound (.mp4; "
                                                  "needs ffmpeg)")

    p = commands.add_parser("index-audio", help="index recordings for sheet-to-audio search",
                            description="Embed audio excerpts every --hop frames (20 per second) of recordings; "
                                        "each file is one recording, named after the file.")
    _add_model_arguments(p, required=True)
    p.add_argument("recordings", nargs="+", metavar="AUDIO", help="audio file (wav, flac, ogg, mp3)")
    _add_out_arguments(p)
    p.add_argument("--hop", type=_positive_int, default=10, help="frames between excerpts (10 = 0.5 s)")

    p = commands.add_parser("query-sheet", help="find where a sheet snippet or page region sounds in recordings",
                            description="Look up sheet snippets in an audio index: a region of a score, PDF or "
                                        "page (--page, --system, --x; counted from 1, x in px of the 835-px page) "
                                        "or an image without --page, read as a crop at any scale (rescaled by its "
                                        "staff space). Times are excerpt centres in seconds.")
    p.add_argument("--index", required=True, help="index directory written by `keras-asr index-audio`")
    p.add_argument("sheet", metavar="SHEET", help="score file, PDF, page image or image crop")
    _add_model_arguments(p, required=False)
    p.add_argument("--page", type=_positive_int, help="page (from 1)")
    p.add_argument("--system", type=_positive_int, help="system on the page (from 1)")
    p.add_argument("--x", type=float, help="snippet centre in px of the page (default: snippets every --hop px)")
    p.add_argument("--hop", type=_positive_int, default=SNIPPET_HOP,
                   help=f"px between snippets of a region ({SNIPPET_HOP})")
    p.add_argument("--top", type=_positive_int, default=25, help="excerpts retrieved per snippet (25)")
    p.add_argument("--json", action="store_true", help="print the full result as JSON")

    p = commands.add_parser("train", help="train a model on an msmd TFDS config with the paper's schedule",
                            description="Train any variant (BL1/BL2, SC/MC/LC, +AT) with the paper's schedule "
                                        "(every number an option, paper values as defaults); rerun the same "
                                        "command to resume after an interruption.")
    training.add_arguments(p)

    p = commands.add_parser("evaluate", help="Tables 2 and 3 of the paper for trained runs",
                            description="R@1/5/10/25, MRR and MR in both directions on the fixed test set, "
                                        "without and with CCA refinement, and MRR per tempo ratio.")
    evaluation.add_arguments(p)

    p = commands.add_parser("convert", help="convert the authors' original BL1-SC model to a .keras file",
                            description="Convert params_all_split_mutopia_full_aug.pkl (CPJKU/audio_sheet_retrieval)"
                                        " to a keras-asr .keras model.")
    p.add_argument("params", help="the original parameter file (.pkl)")
    p.add_argument("output", help="the .keras file to write")
    return parser


def _positive_float(text):
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def _log(line):
    print(line, file=sys.stderr, flush=True)


def _index(args):
    from keras_asr import library

    _write_index(args, args.scores, library.index_scores, "sheet", "snippets", "piece(s)")


def _index_audio(args):
    from keras_asr import recordings

    _write_index(args, args.recordings, recordings.index_recordings, "audio", "excerpts", "recording(s)")


def _write_index(args, paths, index_files, kind, rows, sources_name):
    """`index` and `index-audio`: embed `paths` with `index_files` (`library.index_scores` or
    `recordings.index_recordings`), save, summarize."""
    from keras_asr import encoding
    from keras_asr import index as index_lib
    from keras_asr import retrieval

    # Before minutes of embedding: would the index be allowed into --out? (`save` checks again.)
    index_lib.check_target(args.out, kind, args.overwrite)
    encoders = encoding.load_encoders(args.model, args.saved_model)
    index, sources, skipped = index_files(encoders, paths, hop=args.hop, log=_log)
    if not len(index):
        raise encoding.RetrievalError(f"Nothing could be indexed: all {len(paths)} file(s) were skipped.")
    index.method = args.backend
    index.prepare()  # an approximate backend's index is built here and saved with the rows
    retrieval.save_index(index, args.out, encoders, sources, overwrite=args.overwrite, kind=kind, hop=args.hop)
    print(f"{args.out}: {len(index)} {rows} of {len(sources)} {sources_name}, model {encoders.model_id}, "
          f"search {index.search_method()}"
          + (f"; {len(skipped)} file(s) skipped" if skipped else ""))


def _query(args):
    from keras_asr import identification
    from keras_asr import recordings
    from keras_asr import retrieval

    index, collection, encoders = retrieval.load_index(args.index, args.model, args.saved_model, kind="sheet")
    spec = recordings.load_spectrogram(args.audio, encoders.frames)
    result = identification.identify(index, encoders, spec, excerpts=args.excerpts, k=args.top,
                                     rates=tuple(args.rates))
    status = None
    if args.plot:
        try:
            from keras_asr import plots

            drawn = plots.plot_identification(result, collection.get("sources", {}), args.plot)
            _log(f"{args.plot}: the path through {drawn['piece']}, page(s) {drawn['pages']}")
        except (OSError, ValueError, RuntimeError) as e:  # the ranking is still printed below
            _log(f"{PROG}: error: cannot draw {args.plot}: {e}")
            status = 1
    if args.video:
        try:
            from keras_asr import plots

            made = plots.follow_video(result, collection.get("sources", {}), args.audio, args.video)
            _log(f"{args.video}: {made['seconds']:.1f} s following {made['piece']}")
        except (OSError, ValueError, RuntimeError) as e:  # the ranking is still printed below
            _log(f"{PROG}: error: cannot write {args.video}: {e}")
            status = 1
    if args.json:
        output = {"audio": os.path.abspath(args.audio), "index": os.path.abspath(args.index),
                  "model_id": encoders.model_id, "match": result["match"], "rate": result["rate"],
                  "pieces": result["pieces"],
                  "timeline": result["timeline"], "excerpts": result["excerpts"]}
        print(json.dumps(output, indent=2))
        return status
    match, pieces = result["match"], result["pieces"]
    if match["piece"] is not None:
        print(f"Playing: {match['piece']} (confidence {match['confidence']:.2f})")
    else:
        print(f"No clear match (best guess {pieces[0]['piece']}, confidence {match['confidence']:.2f}): the "
              "recording may not be in the index, or hold no music.")
    if len(args.rates) > 1:
        rate, tried = result["rate"], f"{min(args.rates):g}-{max(args.rates):g}"
        print("Tempo: about the written tempo (tempo search: rate 1 fitted best of " + tried + ")" if rate == 1 else
              f"Tempo: about {1 / rate:.2g} times the written tempo (tempo search: the excerpts fitted best read "
              f"{rate:g} times as fast, of {tried})")
    print(f"Pieces, by their best path through the score ({len(result['excerpts'])} excerpts in time order; "
          f"score: mean hub-normalised similarity; votes: the {args.top} nearest snippets of each excerpt):")
    for rank, entry in enumerate(pieces[:TOP_PIECES], 1):
        print(f"{rank:4d}. {entry['piece']:<40s} score {entry['score']:7.4f}  votes {entry['votes']:5d}")
    if len(pieces) > TOP_PIECES:
        print(f"      ... {len(pieces) - TOP_PIECES} more (--json lists all)")
    timeline = result["timeline"]
    shown = timeline[::max(1, -(-len(timeline) // TIMELINE_LINES))]
    where = "Where it is" if match["piece"] is not None else "Where it would be"
    print(f"{where} in {pieces[0]['piece']} (page, system from 1; x in px of the page; --json: every excerpt):")
    for entry in shown:
        bar = f"  measure {entry['measure']}" if "measure" in entry else ""
        print(f"  {entry['time']:7.2f} s  page {entry['page']} system {entry['system']} x {entry['x']:.0f}{bar}")
    return status


def _query_sheet(args):
    from keras_asr import identification
    from keras_asr import library
    from keras_asr import retrieval

    index, _, encoders = retrieval.load_index(args.index, args.model, args.saved_model, kind="audio")
    snippets, positions = library.sheet_queries(args.sheet, args.page, args.system, args.x, hop=args.hop)
    result = identification.locate(index, encoders, snippets, positions, k=args.top)
    if args.json:
        output = {"sheet": os.path.abspath(args.sheet), "index": os.path.abspath(args.index),
                  "model_id": encoders.model_id, **result}
        print(json.dumps(output, indent=2))
        return
    print(f"Recordings, by votes of {len(snippets)} snippets x {args.top} excerpts:")
    for rank, entry in enumerate(result["recordings"][:10], 1):
        print(f"{rank:4d}. {entry['recording']:<40s} {entry['votes']:6d}")
    print("Best time of each snippet:")
    for entry in result["snippets"]:
        where = "crop" if entry["position"] is None else (
            "page {page} system {system} x {x:.0f}".format(**entry["position"]))
        hit = entry["hits"][0]
        print(f"  {where}  ->  {hit['recording']} at {hit['time']:.2f} s  score {hit['score']:.3f}")


def _convert(args):
    from keras_asr import pretrained

    if not os.path.isfile(args.params):
        raise FileNotFoundError(f"No parameter file at {args.params}.")
    pretrained.main([args.params, args.output])


def _train(args):
    training.train_from_arguments(args)


def _evaluate(args):
    evaluation.evaluate_from_arguments(args)


COMMANDS = {"index": _index, "query": _query, "index-audio": _index_audio, "query-sheet": _query_sheet,
            "train": _train, "evaluate": _evaluate, "convert": _convert}


def main(argv=None):
    """Runs the command line; returns the exit status (0 ok, 1 error, 130 Ctrl-C; usage errors exit with 2)."""
    args = build_parser().parse_args(argv)
    try:
        status = COMMANDS[args.command](args)
    except KeyboardInterrupt:
        # Whatever was being written has been taken back (atomic writes); a traceback would add nothing.
        _log(f"{PROG}: interrupted")
        return 130
    except BrokenPipeError:
        # The reader of stdout went away (`keras-asr query --json ... | head`): not an error of ours. Point
        # stdout at /dev/null so that the interpreter's final flush does not fail again.
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # stdout is no file (captured): nothing will flush into a closed pipe
            pass
        return 0
    except SystemExit as e:  # keras_asr.pretrained.main reports its errors this way
        if isinstance(e.code, str):
            _log(f"{PROG}: {e.code}")
            return 1
        raise
    # RetrievalError, ModelMismatchError, EmptyIndexError, NoStaffSystemsError, unreadable files (PIL: OSError,
    # pdfium: RuntimeError): bad input, which a message explains better than a traceback.
    except (ValueError, OSError, RuntimeError) as e:
        _log(f"{PROG}: error: {e}")
        return 1
    return status or 0


if __name__ == "__main__":
    sys.exit(main())
