import hashlib
import json
import os

import numpy as np
import pytest

from tfds_msmd import layout
from tfds_msmd.corpus import build, sources, testing

pytestmark = pytest.mark.single_backend


def test_tiny_corpus_follows_the_msmd_layout(tiny_corpus):
    assert layout.read_split(tiny_corpus) == {"train": ["bach__bwv269__chorale"], "valid": [],
                                              "test": ["bach__bwv347__chorale"]}
    piece_dir = os.path.join(tiny_corpus, "bach__bwv269__chorale")
    score = os.path.join(piece_dir, "scores", "bach__bwv269__chorale_ly")
    assert sorted(os.listdir(os.path.join(score, "img"))) == ["01.png"]
    notes = np.load(os.path.join(score, "coords", "notes_01.npy"))
    systems = np.load(os.path.join(score, "coords", "systems_01.npy"))
    assert notes.dtype == systems.dtype == np.float32 and notes.shape[1] == 2 and systems.shape[1:] == (4, 2)
    heads = layout.read_mung(os.path.join(score, "mung", "01.xml"))
    np.testing.assert_allclose([(h.y, h.x) for h in heads], notes, atol=0.01)
    assert layout.performance_names(piece_dir) == ["bach__bwv269__chorale_tempo-1000_TimGM6mb",
                                                   "bach__bwv269__chorale_tempo-1100_TimGM6mb"]
    for name in layout.performance_names(piece_dir):
        features = os.path.join(piece_dir, "performances", name, "features")
        spec = np.load(os.path.join(features, "bach__bwv269__chorale_spec.npy"))
        events = np.load(os.path.join(features, "bach__bwv269__chorale_notes.npy"))
        onsets = np.load(os.path.join(features, "bach__bwv269__chorale_onsets.npy"))
        assert spec.shape[0] == 92 and spec.dtype == np.float32 and events.shape == (len(heads), 5)
        np.testing.assert_allclose(onsets, np.ceil(events[:, 0] * 20), atol=1)  # float32 seconds: +-1 frame
        assert np.all(onsets >= events[:, 0] * 20 - 1e-3) and np.all(onsets < events[:, 0] * 20 + 1)
        assert np.all(np.diff(events[:, 0]) >= 0) and onsets.max() < spec.shape[1]
        for h in heads:  # every notehead carries its event: the event's pitch and onset frame
            i = h.data[f"{name}_note_event_idx"]
            assert events[i, 1] == h.pitch and onsets[i] == h.data[f"{name}_onset_frame"]
    records = layout.read_piece(piece_dir)
    assert [r.tempo_ratio for r in records] == [1.0, 1.1] and all(len(r.onset_frames) > 10 for r in records)


def test_rerun_skips_finished_pieces_and_broken_scores_are_reported(tiny_corpus, tmp_path):
    before = {f: os.path.getmtime(os.path.join(tiny_corpus, f, "scores")) for f in os.listdir(tiny_corpus)
              if f.startswith("bach")}
    testing.make_tiny_corpus(tiny_corpus, n_pieces=2)
    assert before == {f: os.path.getmtime(os.path.join(tiny_corpus, f, "scores")) for f in before}

    broken = tmp_path / "broken.musicxml"
    broken.write_text("<score-partwise><part-list></score-partwise>")
    jobs = [build.Job(sources.Source("test__broken__score", str(broken)), "train", testing.TINY_RENDERS[:1]),
            build.Job(sources.Source("bach__bwv365__chorale", "bach/bwv365.mxl", 2), "valid", testing.TINY_RENDERS[:1])]
    results = build.build_corpus(tmp_path / "out", "tiny", workers=1, keep_audio=False, jobs=jobs, log=None)
    assert [r.status for r in results] == ["failed", "built"]
    assert not os.path.exists(tmp_path / "out" / "test__broken__score")
    assert not os.listdir(tmp_path / "out" / ".partial")
    assert layout.read_split(tmp_path / "out")["train"] == []
    meta = json.loads((tmp_path / "out" / "corpus.json").read_text())
    assert "test__broken__score" in meta["failed"]
    # Every build ends with the alignment check over the pieces it holds, recorded in corpus.json.
    check = meta["alignment_check"]
    assert check["performances"] == 1 and check["checked"] > 10
    assert check["passed"] > 0.9 > 0.5 > check["control"]


def test_build_is_deterministic(tiny_corpus, tmp_path):
    testing.make_tiny_corpus(tmp_path, n_pieces=1)
    piece = "bach__bwv269__chorale"

    def digests(root):
        out = {}
        for d, _, files in os.walk(os.path.join(root, piece)):
            for f in files:
                with open(os.path.join(d, f), "rb") as fh:
                    out[os.path.relpath(os.path.join(d, f), root)] = hashlib.md5(fh.read()).hexdigest()
        return out

    assert digests(tmp_path) == digests(tiny_corpus)


def test_configs_plan_fixed_splits_and_renders():
    jobs = build.plan("small")
    assert {j.split for j in jobs} == {"train", "valid", "test"}
    test_fonts = {sf for j in jobs if j.split == "test" for _, sf in j.renders}
    train_fonts = {sf for j in jobs if j.split != "test" for _, sf in j.renders}
    assert test_fonts == {"MuseScore_General"} and "MuseScore_General" not in train_fonts
    assert sorted(r for j in jobs if j.split == "test" for r, _ in j.renders) == [0.5, 0.66, 1.0, 1.33, 2.0]


def test_a_piece_reaches_the_disk_before_it_counts_as_built(tmp_path, monkeypatch):
    import errno

    from tfds_msmd.corpus import writer

    synced = []
    monkeypatch.setattr(writer.atomic, "fsync", synced.append)
    job = build.Job(sources.Source("bach__bwv365__chorale", "bach/bwv365.mxl", 2), "valid", testing.TINY_RENDERS[:1])
    assert build.build_piece(job, tmp_path / "out", keep_audio=False).status == "built"
    piece = tmp_path / "out" / "bach__bwv365__chorale"
    # Every file of the piece was synced (under its temporary name), then the root that the rename changed.
    files = sorted(os.path.relpath(os.path.join(d, f), piece) for d, _, fs in os.walk(piece) for f in fs)
    partial = [os.path.relpath(p, synced[-2]) for p in synced[:-1]]  # [-2]: the temporary folder itself
    assert files and set(files) <= set(partial) and synced[-1] == tmp_path / "out"

    def full_disk(path):
        raise OSError(errno.ENOSPC, "No space left on device", path)

    monkeypatch.setattr(writer.atomic, "fsync", full_disk)
    result = build.build_piece(job, tmp_path / "full", keep_audio=False)
    assert result.status == "failed" and "No space left on device" in result.error
    assert not os.path.exists(tmp_path / "full" / "bach__bwv365__chorale")
    assert not os.listdir(tmp_path / "full" / ".partial")


def test_a_rerun_removes_what_a_killed_build_left_half_written(tmp_path):
    import subprocess
    import sys

    from tfds_msmd.corpus import writer

    partial = tmp_path / "out" / ".partial"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name in (f"a__b__c.{dead.pid}.x1", f"a__b__d.{os.getpid()}.x2", "a__b__e.x3"):  # killed, running, old
        (partial / name / "scores").mkdir(parents=True)
    assert writer.remove_abandoned(tmp_path / "out") == 2
    assert sorted(os.listdir(partial)) == [f"a__b__d.{os.getpid()}.x2"]
