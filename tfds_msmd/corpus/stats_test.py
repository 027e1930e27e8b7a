import re

import pytest

from tfds_msmd.corpus import stats

pytestmark = pytest.mark.single_backend


def test_stats_count_the_splits_and_the_training_mix(tiny_corpus):
    out = stats.corpus_stats(tiny_corpus)
    assert out["train"]["pieces"] == 1 and out["test"]["pieces"] == 1 and out["train"]["pairs"] > 10
    # The tiny corpus' one training piece: every training pair is a verovio-engraved bach chorale.
    assert out["mix"]["collection"] == {"bach": 1.0} and out["mix"]["engraving"] == {"verovio": 1.0}
    assert sum(out["mix"]["sound"].values()) == pytest.approx(1.0, abs=1e-3)
    assert set(out["mix"]["sound"]) == {"TimGM6mb"}


def test_stats_prints_the_mix(tiny_corpus, capsys):
    stats.main([str(tiny_corpus)])
    printed = capsys.readouterr().out
    assert "| train | 1 |" in printed and "training pairs by collection: bach 100.0%" in printed


def test_select_prints_a_regex_of_the_training_pieces_of_one_engraving(tiny_corpus, capsys):
    regex, pieces = stats.selection_regex(tiny_corpus, "engraving", ["verovio"])
    train = stats.layout.read_split(tiny_corpus)["train"]
    assert pieces == sorted(train)
    assert all(re.search(regex, f"{p}/{p}_tempo-1000_TimGM6mb") for p in train)
    # A test piece, or a name that only starts like a training piece, is not selected.
    test = stats.layout.read_split(tiny_corpus)["test"]
    assert not any(re.search(regex, f"{p}/x") for p in test)
    assert not re.search(regex, f"{train[0]}x/perf")
    stats.main([str(tiny_corpus), "--select", "engraving=verovio"])
    assert capsys.readouterr().out.strip() == regex


def test_select_names_the_setups_when_none_matches(tiny_corpus):
    with pytest.raises(ValueError, match="the corpus has: verovio"):
        stats.selection_regex(tiny_corpus, "engraving", ["lilypond"])
