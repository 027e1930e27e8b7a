import ast
import pathlib

import numpy as np
import pytest

from keras_asr import evaluation
from keras_asr import sources
from keras_asr.data import PairPool
from keras_asr.testing import fixture_root

FIELDS = ("piece", "performance", "tempo_ratio", "soundfont", "strip", "spectrogram", "onset_frames", "notehead_x")


def test_the_msmd_source_is_installed_and_reads_the_fixture_corpus():
    assert "msmd" in sources.installed_sources()
    records = sources.read_corpus(fixture_root(), "test")
    assert {sources.field(r, "piece") for r in records} == {"bach__bwv153-1__chorale"}
    for r in records:
        assert all(sources.field(r, f) is not None for f in FIELDS)
    everything = sources.read_corpus(fixture_root())
    assert len({sources.field(r, "piece") for r in everything}) == 3 and len(everything) > len(records)
    with pytest.raises(ValueError, match="Unknown split 'tset'"):
        sources.read_corpus(fixture_root(), "tset")


def test_records_group_by_tempo_and_soundfont():
    records = [{"tempo_ratio": t, "soundfont": s} for t, s in [(2.0, "a"), (1.0, "a"), (1.0, "b"), (0.499, "a")]]
    assert list(sources.by_tempo(records)) == [0.5, 1.0, 2.0]
    assert [len(v) for v in sources.by_tempo(records, soundfont="a").values()] == [1, 1, 1]
    assert sources.by_tempo(records, soundfont="c") == {}


class _ToySource:
    """A data set that is not MSMD: one folder marked by a file, records made from the fixture's arrays."""

    corpus_hint = "a toy corpus has toy.txt"

    def __init__(self, records):
        self.records = records

    def register(self):
        pass

    def is_corpus(self, root):
        return (pathlib.Path(root) / "toy.txt").exists()

    def read_corpus(self, root, split=None):
        for r in self.records:
            yield {f: sources.field(r, f) for f in FIELDS} | {"piece": "toy_" + sources.field(r, "piece")}


def test_any_installed_source_feeds_pools_and_evaluation(tmp_path, monkeypatch):
    fixture = sources.read_corpus(fixture_root(), "test")
    installed = dict(sources.installed_sources()) | {"toy": _ToySource(fixture)}
    monkeypatch.setattr(sources, "installed_sources", lambda: installed)
    (tmp_path / "toy.txt").write_text("")
    pools = evaluation.corpus_pools(str(tmp_path), "test")
    assert sorted(pools) == [1.0, 2.0]
    assert all(p.startswith("toy_") for p in pools[1.0].example_piece)
    direct = PairPool(fixture)
    assert len(direct) == sum(len(p) for p in pools.values())
    np.testing.assert_array_equal(np.sort(direct.pair_onset), np.sort(np.concatenate([p.pair_onset for p in
                                                                                     pools.values()])))
    with pytest.raises(FileNotFoundError, match="a toy corpus has toy.txt"):
        sources.read_corpus(str(tmp_path / ".."))


def test_the_model_package_imports_no_dataset_package():
    # The dependency runs one way: tfds_msmd builds on keras_asr, keras_asr reads data through `sources` only.
    # (Tests may make their real data with the corpus builder; the package itself never imports it.)
    package = pathlib.Path(__file__).parent
    offenders = []
    for path in (p for p in package.rglob("*.py") if not p.name.endswith("_test.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            offenders += [f"{path.relative_to(package)}: {n}" for n in names if n.split(".")[0] == "tfds_msmd"]
    assert not offenders
