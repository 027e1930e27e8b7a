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
