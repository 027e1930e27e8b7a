"""Faults and bad input, replayed: a kill or a full disk during an index write, a score that crashes the engraver,
Ctrl-C, bad arguments, damaged files, skewed pages, worker processes that cannot start.

Each case must end in the previous state or one line on stderr naming what is wrong, never a traceback or a
wrong answer. The inputs are small and real: the committed fixture's engraved pages, an index of them made by
`keras-asr index`, a chord synthesised here.
"""

import glob
import io
import json
import os
import re
import resource
import signal
import sys

import music21
import numpy as np
import pytest
import skimage.transform
import soundfile

import keras_asr
from keras_asr import audio
from keras_asr import cli
from keras_asr import index as index_lib
from keras_asr import index_folder
from keras_asr import pages
from keras_asr import saving
from keras_asr import sheet
from keras_asr import staves
from keras_asr.testing import fixture_root
from tfds_msmd.corpus import build

PAGES = sorted(glob.glob(os.path.join(fixture_root(), "*", "scores", "*", "img", "01.png")))  # 3 chorales


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """An untrained 16-frame BL2 model: its answers do not matter here, only what happens around them."""
    path = str(tmp_path_factory.mktemp("model") / "model.keras")
    saving.save_model(keras_asr.build_model(context=16), path)
    return path


@pytest.fixture(scope="module")
def library(model, tmp_path_factory):
    """`keras-asr index` of the 3 fixture pages: (index folder, a 3-second chord recording)."""
    folder = tmp_path_factory.mktemp("library")
    assert cli.main(["index", "--model", model, *PAGES, "--out", str(folder / "library.index")]) == 0
    t = np.arange(3 * audio.SAMPLE_RATE) / audio.SAMPLE_RATE
    # A G major chord (G3 B3 D4) with decaying harmonics, as a plucked or struck string sounds.
    chord = sum(np.sin(2 * np.pi * f * k * t) * np.exp(-3 * t) / k for f in (196.0, 246.9, 293.7) for k in (1, 2, 3))
    soundfile.write(folder / "chord.wav", (0.2 * chord).astype(np.float32), audio.SAMPLE_RATE)
    return folder / "library.index", folder / "chord.wav"


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, message, *argv):
    code, _, err = run(capsys, *argv)
    assert code == 1 and message in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


def two_indexes():
    old = index_lib.SnippetIndex(model_id="m@1")
    old.add(np.eye(8)[:4], piece=["old"] * 4, strip_x=[25, 75, 125, 175])
    new = index_lib.SnippetIndex(model_id="m@1")
    new.add(np.tile(np.eye(8), (500, 1)), piece=["new"] * 4000, strip_x=np.arange(4000) * 50.0)
    return old, new


def in_child(work):
    """Runs `work()` in a forked child (it may kill itself); returns its wait status and what it printed."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        os.close(read)
        try:
            os.write(write, str(work()).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        said = pipe.read()
    return os.waitpid(pid, 0)[1], said


def assert_old_index_intact(directory):
    loaded = index_lib.SnippetIndex.load(directory, model_id="m@1")
    assert len(loaded) == 4 and loaded.identify(np.eye(8)[:2], k=1) == [("old", 2)]
    header = index_lib.read_header(directory)
    return sorted(os.listdir(directory)), sorted([index_lib.HEADER_FILE, *header["files"].values()])


@pytest.mark.single_backend
@pytest.mark.parametrize("part", ["embeddings", "metadata", "header"])
def test_sigkill_during_an_index_write_leaves_the_previous_index(part, tmp_path, monkeypatch):
    old, new = two_indexes()
    old.save(tmp_path / "x.index")

    def die_half_way(path, *args, **kwargs):  # writes half a file, then the process is killed
        with open(path, "wb") as f:
            f.write(b"\x93NUMPY" + b"\0" * 1000)
        os.kill(os.getpid(), signal.SIGKILL)

    target = {"embeddings": (np, "save"), "metadata": (index_folder, "_savez"), "header": (os, "replace")}
    monkeypatch.setattr(*target[part], die_half_way)
    status, _ = in_child(lambda: new.save(tmp_path / "x.index"))
    monkeypatch.undo()
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    listed, parts = assert_old_index_intact(tmp_path / "x.index")
    assert set(parts) <= set(listed)  # the killed write's parts may lie beside it, unreferenced
    # The next write replaces it and sweeps up what the killed one left.
    new.save(tmp_path / "x.index")
    loaded = index_lib.SnippetIndex.load(tmp_path / "x.index", model_id="m@1")
    assert len(loaded) == 4000 and loaded.identify(np.eye(8)[:1], k=3) == [("new", 3)]
    header = index_lib.read_header(tmp_path / "x.index")
    assert sorted(os.listdir(tmp_path / "x.index")) == sorted([index_lib.HEADER_FILE, *header["files"].values()])


@pytest.mark.single_backend
def test_full_disk_during_an_index_write_is_one_clear_error(tmp_path):
    old, new = two_indexes()
    old.save(tmp_path / "x.index")

    def write_with_a_small_disk():
        # The kernel refuses to grow any file past 16 KiB: the 128 KB of embeddings hit it part-way.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16_384, 16_384))
        try:
            new.save(tmp_path / "x.index")
        except OSError as e:
            return str(e)
        return "no error"

    _, said = in_child(write_with_a_small_disk)
    assert said.startswith(f"Cannot write the index at {tmp_path / 'x.index'}") and "is unchanged" in said, said
    listed, parts = assert_old_index_intact(tmp_path / "x.index")
    assert listed == parts  # nothing of the failed write is left


def test_a_score_that_crashes_the_engraver_is_skipped(model, capsys, tmp_path):
    crash = tmp_path / "x1.abc"
    crash.write_text("X:1\n")  # verovio segfaults on this
    code, out, err = run(capsys, "index", "--model", model, PAGES[0], crash, PAGES[1], "--out", tmp_path / "a.index")
    assert code == 0, err
    assert "x1.abc: skipped: verovio crashed (SIGSEGV)" in err and "1 file(s) skipped" in out
    assert "snippets of 2 piece(s)" in out and re.search(r"system\(s\) \(\d+ by page\)", err), err


def test_damaged_indexes_are_one_line_naming_the_file(library, capsys, tmp_path):
    import shutil

    folder, recording = library
    header = index_lib.read_header(folder)

    def damaged(name, damage):
        copy = tmp_path / name
        shutil.copytree(folder, copy)
        damage(copy)
        return copy

    truncated = damaged("truncated", lambda d: os.truncate(d / header["files"]["metadata"], 100))
    one_line_error(capsys, f"{truncated / header['files']['metadata']} has 100 bytes", "query", "--index",
                   truncated, recording)
    empty = damaged("empty", lambda d: (d / header["files"]["embeddings"]).write_bytes(b""))
    one_line_error(capsys, "has 0 bytes", "query", "--index", empty, recording)
    garbage = damaged("garbage", lambda d: (d / "header.json").write_text('{"format": "keras-asr-snip'))
    one_line_error(capsys, f"{garbage / 'header.json'} is not valid JSON", "query", "--index", garbage, recording)

    # The layout of version 1 (fixed part names, collection.json) still loads...
    def version_1(d, rows=None):
        np.save(d / "embeddings.npy", np.load(d / header["files"]["embeddings"])[:rows])
        os.rename(d / header["files"]["metadata"], d / "metadata.npz")
        os.remove(d / header["files"]["embeddings"])
        old = {k: v for k, v in header.items() if k not in ("files", "sizes", "collection")}
        (d / "header.json").write_text(json.dumps({**old, "format_version": 1}))
        (d / "collection.json").write_text(json.dumps(header["collection"]))

    code, out, err = run(capsys, "query", "--index", damaged("version_1", version_1), recording, "--excerpts", 4)
    assert code == 0 and "Pieces, by" in out, err
    # ... and where its parts disagree (the mix a kill could leave then) it is an error, never an answer.
    mixed = damaged("mixed", lambda d: version_1(d, rows=5))
    one_line_error(capsys, f"embeddings of shape (5, 32), but header.json says ({header['count']}, 32)", "query",
                   "--index", mixed, recording)


def test_a_plot_that_cannot_be_written_keeps_the_ranking(library, capsys, tmp_path):
    folder, recording = library
    code, out, err = run(capsys, "query", "--index", folder, recording, "--excerpts", 4, "--top", 3,
                         "--plot", tmp_path / "no" / "such" / "folder" / "q.png")
    assert code == 1 and "cannot draw" in err and "Traceback" not in err, err
    assert "Pieces, by" in out and "page 1 system 1" in out, out  # the ranking and the excerpts' locations


def test_a_reader_that_goes_away_is_not_an_error(library, capsys, monkeypatch):
    class ClosedPipe(io.TextIOBase):  # stdout of `keras-asr query --json ... | head -1` once head has exited
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    assert cli.main(["query", "--index", str(library[0]), str(library[1]), "--excerpts", "4", "--json"]) == 0
    assert capsys.readouterr().err == ""


def test_out_refuses_a_folder_that_is_not_an_index_of_its_kind(model, library, capsys, tmp_path):
    scores = tmp_path / "scores"
    scores.mkdir()
    (scores / "op6.pdf").write_bytes(b"%PDF-1.4")
    one_line_error(capsys, "holds no keras-asr index: refusing", "index", "--model", model, PAGES[0], "--out", scores)
    assert os.listdir(scores) == ["op6.pdf"]
    # An audio index is not replaced by a score index unless told to.
    recordings = tmp_path / "recordings.index"
    audio_index = index_lib.SnippetIndex(model_id="m@1")
    audio_index.add(np.eye(4), recording=["take1"] * 4, time=[0.0, 0.5, 1.0, 1.5])
    audio_index.save(recordings)
    one_line_error(capsys, "holds an index of recordings: refusing to replace it with an index of scores", "index",
                   "--model", model, PAGES[0], "--out", recordings)
    code, _, err = run(capsys, "index", "--model", model, PAGES[0], "--out", recordings, "--overwrite")
    assert code == 0 and index_lib.read_header(recordings)["kind"] == "sheet", err
    # The same kind is replaced in place (re-indexing a library).
    code, _, err = run(capsys, "index", "--model", model, PAGES[1], "--out", recordings)
    assert code == 0 and list(index_lib.read_collection(recordings)["sources"]) == ["01"], err


def test_ctrl_c_exits_130_and_leaves_the_previous_index(model, library, capsys, tmp_path, monkeypatch):
    import shutil

    copy = tmp_path / "copy.index"
    shutil.copytree(library[0], copy)
    before = sorted(os.listdir(copy))

    def interrupted(path, columns):  # Ctrl-C while the metadata is being written
        with open(path, "wb") as f:
            f.write(b"PK")
        signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(index_folder, "_savez", interrupted)
    # Python's own Ctrl-C handler, also where the suite runs as a background job (which inherits SIGINT ignored).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code, _, err = run(capsys, "index", "--model", model, PAGES[2], "--out", copy)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert code == 130 and err.strip().splitlines()[-1] == "keras-asr: interrupted" and "Traceback" not in err
    assert sorted(os.listdir(copy)) == before
    monkeypatch.undo()
    assert len(index_lib.load_index(copy, None, kind="sheet")[0]) == index_lib.read_header(library[0])["count"]


@pytest.mark.single_backend
@pytest.mark.parametrize("option, value, message", [
    ("--batch-size", "0", "expected more than 64"),
    ("--batch-size", "32", "expected more than 64"),  # the CCA would fit such a batch exactly
    ("--learning-rate", "nan", "expected a finite number"),
    ("--learning-rate", "-0.1", "expected more than 0"),
    ("--epochs", "0", "expected at least 1"),
    ("--pairs-per-epoch", "0", "expected at least 1"),
    ("--page-augment", "1.5", "expected at most 1.0"),
    ("--tempo-augment", "2", "expected SLOW,FAST"),
    ("--tempo-augment", "2,0.5", "expected 0 < SLOW <= FAST"),
    ("--train-performances", "(FluidR3", "not a regular expression"),
])
def test_bad_training_arguments_are_refused_before_any_work(option, value, message, capsys, tmp_path):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["train", "--output", str(tmp_path / "run"), option, value])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.single_backend
def test_train_never_builds_a_missing_dataset(capsys, tmp_path):
    err = one_line_error(capsys, "The dataset msmd/full is not built", "train", "--dataset", "msmd/full",
                         "--data-dir", tmp_path / "new_data", "--output", tmp_path / "run")
    assert f"tfds build msmd --imports tfds_msmd --config full --data_dir {tmp_path / 'new_data'}" in err
    assert not os.path.exists(tmp_path / "new_data") and not os.path.exists(tmp_path / "run")


@pytest.mark.single_backend
def test_train_refuses_a_missing_model_to_start_from(capsys, tmp_path):
    one_line_error(capsys, "No model file at", "train", "--init-from", tmp_path / "missing.keras",
                   "--output", tmp_path / "run")
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.single_backend
def test_damaged_model_files_say_so(tmp_path, model):
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(open(model, "rb").read()[:5000])
    with pytest.raises(ValueError, match="is not a .keras file"):
        saving.load_model(truncated)


@pytest.fixture(scope="module")
def mazurka_page():
    """The first page of Chopin's Mazurka op. 6 no. 2 (music21's corpus, Humdrum) engraved: 6 grand-staff systems."""
    return pages.load_pages(music21.common.getCorpusFilePath() / "chopin" / "mazurka06-2.krn")[0]


@pytest.mark.single_backend
@pytest.mark.parametrize("angle", [-2.0, 0.5, 2.0])
def test_a_skewed_page_still_finds_its_systems(angle, mazurka_page):
    straight = sheet.unroll([mazurka_page])
    skewed = skimage.transform.rotate(mazurka_page, angle, order=1, mode="constant", cval=1.0,
                                      preserve_range=True).astype(np.float32)
    try:
        lost = len(straight.systems) - len(staves.detect_systems(skewed))
    except staves.NoStaffSystemsError:
        lost = len(straight.systems)
    assert lost > 0  # without deskewing, the tilted staff lines are not found
    assert staves.estimate_skew(skewed) == pytest.approx(angle, abs=0.1)
    score = sheet.unroll([skewed])
    assert score.systems_per_page == straight.systems_per_page == [6]
    assert [s.num_staves for s in score.systems] == [s.num_staves for s in straight.systems]


@pytest.mark.single_backend
@pytest.mark.parametrize("page", PAGES[:1])
def test_a_straight_page_is_left_as_it_is(page, mazurka_page):
    for straight in (pages.load_image(page), mazurka_page):
        assert staves.estimate_skew(straight) == 0.0 and staves.deskew(straight) is straight


@pytest.mark.single_backend
def test_corpus_workers_that_die_or_cannot_start_fail_at_once(monkeypatch, tmp_path):
    with pytest.raises(RuntimeError, match="A worker process died"):
        list(build.run_in_processes(os._exit, [(3,), (3,), (3,)], workers=2))
    # `python - <<EOF` has no main file for spawned workers to re-import: refused before any starts.
    monkeypatch.setattr(sys.modules["__main__"], "__file__", "<stdin>", raising=False)
    with pytest.raises(RuntimeError, match="'<stdin>' is not a file"):
        build.build_corpus(tmp_path / "corpus", "small", workers=2, log=None)
    assert os.listdir(tmp_path / "corpus") == []


@pytest.mark.single_backend
def test_an_upside_down_page_is_turned_back(mazurka_page):
    for page in (pages.load_image(PAGES[1]), mazurka_page):
        straight = sheet.unroll([page])
        turned = sheet.unroll([page[::-1, ::-1]])
        assert staves.orientation(page) > 0 > staves.UPSIDE_DOWN_BELOW > staves.orientation(page[::-1, ::-1])
        assert straight.turned_pages == () and turned.turned_pages == (0,)
        np.testing.assert_array_equal(turned.strip, straight.strip)


def test_an_upside_down_page_is_indexed_turned_and_said_so(model, capsys, tmp_path):
    import imageio.v3 as iio

    page = pages.load_image(PAGES[1])
    iio.imwrite(tmp_path / "turned.png", (255 * page[::-1, ::-1]).astype(np.uint8))
    code, _, err = run(capsys, "index", "--model", model, tmp_path / "turned.png", "--out", tmp_path / "t.index")
    assert code == 0 and "upside-down page(s) 1 turned" in err, err


def test_a_hop_longer_than_the_score_says_why_nothing_was_indexed(model, capsys, tmp_path):
    code, _, err = run(capsys, "index", "--model", model, PAGES[0], "--hop", "100000", "--out", tmp_path / "h.index")
    assert code == 1 and "no snippet; give a --hop under" in err and "Traceback" not in err, err


@pytest.mark.single_backend
def test_corpus_workers_end_with_a_build_that_is_killed(tmp_path):
    import subprocess
    import time

    script = tmp_path / "build.py"
    script.write_text(
        "import os, sys, time\n"
        "from tfds_msmd.corpus import build\n"
        "def work(k):\n"
        f"    open(os.path.join({str(tmp_path)!r}, f'worker{{k}}'), 'w').write(str(os.getpid()))\n"
        "    time.sleep(600)\n"
        "if __name__ == '__main__':\n"
        "    list(build.run_in_processes(work, [(0,), (1,)], workers=2))\n")
    # The build module under test (this checkout's), not whichever the environment would import.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(build.__file__))))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    build_process = subprocess.Popen([sys.executable, str(script)], env=env)
    try:
        deadline = time.time() + 120
        while len(glob.glob(str(tmp_path / "worker*"))) < 2 and time.time() < deadline:
            time.sleep(0.5)
        pids = [int(open(f).read()) for f in glob.glob(str(tmp_path / "worker*"))]
        assert len(pids) == 2
    finally:
        build_process.kill()  # SIGKILL: the build runs no cleanup
        build_process.wait()

    def alive(pid):  # a zombie (dead, not yet reaped by init) counts as gone
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except FileNotFoundError:
            return False

    deadline = time.time() + 10
    while any(alive(pid) for pid in pids) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in pids)
