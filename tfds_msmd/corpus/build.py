"""Builds the offline corpus: plan the pieces of a config, build each piece folder, write the split file.

Renders follow MSMD's scheme with the three piano sample sets Debian ships (FluidR3_GM, TimGM6mb and
MuseScore_General):

- train: tempo ratios 0.90, 0.95, 1.00, 1.05, 1.10 with FluidR3_GM and TimGM6mb (10 performances);
- valid: 1.00 with FluidR3_GM (MSMD also validates on one of its training synths);
- test: MuseScore_General, held out from training and validation, at 1.00 (the test performance) and at
  0.50, 0.66, 1.33, 2.00 (with 1.00: the tempo-robustness renders of the paper's Table 3).

The `varied` configs (`varied.py`) plan their own engraving setup and renders per piece.

`build_piece` is self-contained and idempotent (a finished piece folder is never redone), so a Beam pipeline
or a process pool can call it once per piece: `jobs = plan(config)`, `results = [build_piece(j, out) for j in
jobs]`, then `finalize(out, config, jobs, results)`; `build_corpus` does all three with a process pool.
Command line:

    python -m tfds_msmd.corpus.build --config small --out /data/msmd_offline
"""

import argparse
import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import sys
import time

from keras_asr.geometry import TEMPO_RATIOS as TEST_TEMPO_RATIOS
from tfds_msmd import layout
from tfds_msmd import layout_writer
from tfds_msmd.corpus import alignment_check
from tfds_msmd.corpus import sources
from tfds_msmd.corpus import varied

TRAIN_SOUNDFONTS = ("FluidR3_GM", "TimGM6mb")
VALID_SOUNDFONT = "FluidR3_GM"
TEST_SOUNDFONT = "MuseScore_General"
TRAIN_RATIOS = (0.90, 0.95, 1.00, 1.05, 1.10)
RENDERS = {
    "train": tuple((r, sf) for sf in TRAIN_SOUNDFONTS for r in TRAIN_RATIOS),
    "valid": ((1.00, VALID_SOUNDFONT),),
    "test": tuple((r, TEST_SOUNDFONT) for r in TEST_TEMPO_RATIOS),
}
# The performance that makes the test pool; the other test renders serve the tempo-robustness test only.
TEST_PERFORMANCE = (1.00, TEST_SOUNDFONT)
CONFIGS = {
    "small": ("small",),
    "full": ("keyboard", "chorales", "quartets", "madrigals"),
    "full_palestrina": ("keyboard", "chorales", "quartets", "madrigals", "palestrina"),
    # Many collections, engravers, fonts and performance styles; see tfds_msmd/corpus/varied.py.
    **{name: tuple(c for c, _ in varied.COLLECTIONS) for name in varied.CONFIGS},
}
METADATA_FILE = "corpus.json"


@dataclasses.dataclass(frozen=True)
class Job:
    """One piece to build: its source, split, renders ((tempo ratio, SoundFont) pairs) and engraving setup."""

    source: sources.Source
    split: str
    renders: tuple
    engraving: str = "verovio"  # a key of setups.SETUPS


@dataclasses.dataclass
class Result:
    """What `build_piece` did: status "built", "skipped" (already there) or "failed" (with the error)."""

    piece: str
    split: str
    status: str
    seconds: float = 0.0
    error: str = ""


def plan(config_name):
    """The jobs of a config ("small", "full" or "full_palestrina"), sorted by piece name.

    A piece name found in several collections (none today) is built once.
    """
    if config_name not in CONFIGS:
        raise ValueError(f"Unknown corpus config {config_name!r}; choose from {sorted(CONFIGS)}.")
    if config_name in varied.CONFIGS:
        return [Job(*job) for job in varied.plan(config_name)]
    found = {}
    for name in CONFIGS[config_name]:
        if name == "small":
            items = [sources.Source(sources.piece_name(p, "chorale" if p.startswith("bach/") else "piano"), p)
                     for p in sources.SMALL_PIECES]
        else:
            items = sources.collection(name)
        for s in items:
            found.setdefault(s.piece, s)
    jobs = []
    for piece in sorted(found):
        split = sources.split_of(piece)
        jobs.append(Job(found[piece], split, RENDERS[split]))
    return jobs


def build_piece(job, out_dir, keep_audio=True):
    """Builds one piece folder `<out_dir>/<piece>` unless it exists; never raises for a bad score.

    Args:
        job: a `Job` from `plan`.
        out_dir: corpus root.
        keep_audio: keep the rendered wav files.

    Returns:
        A `Result`.
    """
    from tfds_msmd.corpus import setups, writer

    piece = job.source.piece
    if os.path.isdir(os.path.join(out_dir, piece)):
        return Result(piece, job.split, "skipped")
    start = time.time()
    try:
        engraving = setups.engrave(sources.load_score(job.source), job.engraving)
        writer.write_piece(out_dir, piece, engraving, job.renders, keep_audio)
    except Exception as e:  # noqa: BLE001 - a piece that fails is reported and skipped, never fatal.
        return Result(piece, job.split, "failed", time.time() - start, f"{type(e).__name__}: {e}")
    return Result(piece, job.split, "built", time.time() - start)


def build_corpus(out_dir, config_name="small", workers=None, keep_audio=True, jobs=None, log=sys.stderr):
    """Builds a corpus config into `out_dir`, resuming where a previous run stopped.

    Pieces are built in parallel, each into a temporary folder renamed into place when done; existing piece
    folders are skipped, and half-written ones a killed build left in `.partial/` are removed. Failed pieces
    are reported and left out of the split file.

    Args:
        out_dir: corpus root (created).
        config_name: key of `CONFIGS`.
        workers: number of processes (default: CPU count).
        keep_audio: keep the rendered wav files.
        jobs: build these jobs instead of `plan(config_name)` (e.g. for excerpts).
        log: stream for progress lines (None: silent).

    Returns:
        The list of `Result`s, in job order.
    """
    from tfds_msmd.corpus import writer

    os.makedirs(out_dir, exist_ok=True)
    removed = writer.remove_abandoned(out_dir)
    if removed and log:
        print(f"Removed {removed} half-written piece(s) of an interrupted build from {out_dir}/.partial.", file=log)
    jobs = plan(config_name) if jobs is None else list(jobs)
    workers = workers or os.cpu_count() or 1
    results, start = [], time.time()
    args = [(job, out_dir, keep_audio) for job in jobs]
    if workers > 1 and len(jobs) > 1:
        for result in run_in_processes(build_piece, args, workers):
            results.append(_report(result, len(results) + 1, len(jobs), start, log))
        order = {job.source.piece: i for i, job in enumerate(jobs)}
        results.sort(key=lambda r: order[r.piece])
    else:
        for a in args:
            results.append(_report(build_piece(*a), len(results) + 1, len(jobs), start, log))
    finalize(out_dir, config_name, jobs, results, log=log)
    if log:
        failed = [r for r in results if r.status == "failed"]
        print(f"corpus {config_name}: {len(results) - len(failed)} pieces in {out_dir} ({len(failed)} failed) "
              f"in {time.time() - start:.0f} s", file=log)
    return results


def finalize(out_dir, config_name, jobs, results, log=sys.stderr):
    """Writes `split.yaml` (the pieces built, by split) and `corpus.json` once every piece is done.

    `corpus.json` holds the config, the performances (`tempo-<ratio*1000>_<soundfont>`) of each split, the
    test performance, the pieces that failed with their errors, and the summary of the alignment check over
    every piece built (also printed to `log`).
    """
    done = {r.piece for r in results if r.status != "failed"}
    split = {name: [j.source.piece for j in jobs if j.split == name and j.source.piece in done]
             for name in RENDERS}
    layout_writer.write_split(out_dir, split)
    renders = {}
    for job in jobs:
        renders.setdefault(job.split, set()).update(layout.performance_name("", *r)[1:] for r in job.renders)
    meta = {
        "config": config_name,
        "renders": {k: sorted(v) for k, v in renders.items()},
        "test_performance": layout.performance_name("", *TEST_PERFORMANCE)[1:],
        "failed": {r.piece: r.error for r in results if r.status == "failed"},
        "collections": {j.source.piece: j.source.collection for j in jobs if j.source.collection},
        "engravings": {j.source.piece: j.engraving for j in jobs},
        "alignment_check": dataclasses.asdict(alignment_check.check_alignment(out_dir, sorted(done), verbose=False)),
    }
    if log:
        print(alignment_check.Summary(**meta["alignment_check"]), file=log, flush=True)
    with open(os.path.join(out_dir, METADATA_FILE), "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)


def run_in_processes(function, args, workers):
    """Yields `function(*a)` for each tuple `a` of `args`, in the order they finish, from `workers` processes.

    A worker that dies (a crash inside a native library, the OOM killer) or cannot start ends the call at once
    with a RuntimeError that says so: a `multiprocessing.Pool` would start new workers and wait forever.

    Raises:
        RuntimeError: worker processes cannot start, or one died.
    """
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    if main is not None and not os.path.isfile(main):
        # Spawned workers re-run the main module from its file; there is none for `python - <<EOF`.
        raise RuntimeError(f"Worker processes cannot start: they re-import the main script, and {main!r} is not a "
                           "file (a script read from standard input?). Run the script from a file, or use one "
                           "worker (workers=1, --workers 1).")
    # "spawn": forking after TF/JAX imports in the parent can deadlock.
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                                  initializer=_exit_with_parent, initargs=(os.getpid(),))
    try:
        futures = [pool.submit(function, *a) for a in args]
        for future in concurrent.futures.as_completed(futures):
            yield future.result()
    except concurrent.futures.process.BrokenProcessPool as e:
        raise RuntimeError(f"A worker process died or could not start ({e}). What was finished is kept; rerun "
                           "to resume, with workers=1 (--workers 1) to see the failing piece's error.") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _exit_with_parent(parent):
    """Worker initializer: the worker ends when the build that started it does, even one killed with SIGKILL
    (which runs no cleanup): orphaned workers would otherwise go on engraving and synthesizing for nobody."""
    import ctypes
    import signal
    import threading

    try:  # Linux: the kernel sends the signal when the parent dies
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (AttributeError, OSError):
        pass
    if os.getppid() != parent:  # the parent died before the request took effect
        os._exit(1)

    def watch():
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()  # where prctl is not available


def _report(result, k, n, start, log):
    if log:
        detail = f" ({result.seconds:.1f} s)" if result.status == "built" else ""
        detail += f": {result.error}" if result.error else ""
        print(f"[{k}/{n} {time.time() - start:.0f} s] {result.piece} {result.status}{detail}", file=log, flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="small", choices=sorted(CONFIGS))
    parser.add_argument("--out", required=True, help="corpus root folder")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--no-audio", action="store_true", help="do not keep the rendered wav files")
    args = parser.parse_args(argv)
    results = build_corpus(args.out, args.config, args.workers, keep_audio=not args.no_audio)
    return 0 if any(r.status != "failed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
