import glob
import io
import types

import numpy as np
import pytest

from keras_asr import build_model
from keras_asr import evaluation
from keras_asr import plots
from keras_asr.data import PairPool
from keras_asr.testing import fixture_root
from tfds_msmd.layout import read_piece


@pytest.fixture(scope="module")
def pool():
    return PairPool([r for p in sorted(glob.glob(fixture_root() + "/*/")) for r in read_piece(p)])


@pytest.mark.single_backend
def test_entropy_of_uniform_and_peaked_attention():
    w = np.array([[0.25] * 4, [1.0, 0, 0, 0]])
    np.testing.assert_allclose(evaluation.attention_entropy(w), [np.log(4), 0], atol=1e-9)


@pytest.mark.single_backend
def test_onsets_in_excerpt_counts_the_window(pool):
    i = len(pool) // 2
    context = 32
    e, o = pool.pair_example[i], pool.pair_onset[i]
    onsets = np.unique(pool.pair_onset[pool.pair_example == e])
    # By hand: distinct onset frames in [o - 16, o + 16).
    expected = int(np.sum((onsets >= o - 16) & (onsets < o + 16)))
    assert evaluation.onsets_in_excerpt(pool, [i], context)[0] == expected >= 1


def test_onsets_in_excerpt_counts_a_chord_once():
    # Three noteheads of one chord at frame 10, single notes at 12 and 40: two onsets in [0, 32).
    pool = types.SimpleNamespace(pair_example=np.zeros(5, int), pair_onset=np.array([10, 10, 10, 12, 40]))
    assert evaluation.onsets_in_excerpt(pool, [0, 4], 32).tolist() == [2, 1]


@pytest.mark.single_backend
def test_snippet_spans_divide_the_width_by_the_score_speed():
    # Two performances: 2 px per frame, and 4 px per frame with a repeat (x jumps back) at frame 100.
    onset = np.arange(0, 200, 4)
    x2 = 2.0 * onset
    x4 = np.where(onset < 100, 4.0 * onset, 4.0 * (onset - 100))
    pool = types.SimpleNamespace(pair_example=np.repeat([0, 1], len(onset)), pair_onset=np.tile(onset, 2),
                                 pair_x=np.concatenate([x2, x4]))
    spans = evaluation.snippet_spans(pool, width=200, window=20, step=1)
    # Every pair of the first gives 100 frames; those of the second near the jump are skipped, the rest 50.
    assert np.sum(np.isclose(spans, 100)) == len(onset)
    rest = spans[~np.isclose(spans, 100)]
    assert len(rest) < len(onset) - 5 and np.allclose(rest, 50)


def test_attention_by_tempo_measures_each_render(pool, tmp_path):
    model = build_model(context=32, attention=True)
    by_tempo = evaluation.attention_by_tempo(model, {1.0: pool, 2.0: pool}, n=20, centre=8)
    assert sorted(by_tempo) == [1.0, 2.0]
    r = by_tempo[1.0]
    assert r["n"] == 20 and r["profile"].shape == (32,) and np.isclose(r["profile"].sum(), 1, atol=1e-5)
    # The same pool twice: the same numbers; exp(entropy) is at most the 32 frames.
    assert by_tempo[2.0]["width"] == pytest.approx(r["width"]) and 1 <= r["width"] <= 32 + 1e-6
    # The central 8 frames' share is the mean profile summed over frames 12..19.
    assert r["centre_share"] == pytest.approx(r["profile"][12:20].sum(), abs=1e-6)
    whole = evaluation.attention_by_tempo(model, {1.0: pool}, n=20, centre=32)[1.0]
    assert whole["centre_share"] == pytest.approx(1.0, abs=1e-5)
    plots.plot_attention_by_tempo(by_tempo, "t").savefig(tmp_path / "t.png")


def test_attention_statistics_and_figures(pool, tmp_path):
    model = build_model(context=32, attention=True)
    idx = pool.eval_indices(40)
    entropy, onsets, weights = evaluation.attention_statistics(model, pool, idx)
    assert weights.shape == (40, 32) and np.allclose(weights.sum(1), 1, atol=1e-5)
    assert np.all(entropy <= np.log(32) + 1e-6) and np.all(onsets >= 1)
    results = evaluation.evaluate_model(model, pool, n=40)
    assert set(results) == {"audio2sheet", "sheet2audio"} and results["audio2sheet"]["n"] == 40
    pairs = pool.batch(idx[:2], 32)
    plots.plot_attention(pairs["spectrogram"], weights[:2], pairs["sheet"], ["a", "b"]).savefig(tmp_path / "a.png")
    plots.plot_entropy_vs_onsets(entropy, onsets, 32).savefig(tmp_path / "b.png")
    plots.plot_validation_curves({"x": [{"epoch": 1, "val_mrr": 0.1}, {"epoch": 2, "val_mrr": 0.2}]}).savefig(
        tmp_path / "c.png")
    # A run whose validation set changed after epoch 2: two segments of one colour, the second named.
    history = [{"epoch": e, "val_mrr": v} for e, v in enumerate([0.1, 0.3, 0.2, 0.25], 1)]
    fig = plots.plot_validation_curves({"x": history}, changes={"x": [(2, "spread")]})
    lines = fig.axes[0].get_lines()
    assert [list(line.get_xdata()) for line in lines] == [[1, 2], [3, 4]]
    assert lines[0].get_color() == lines[1].get_color() and lines[1].get_label() == "x, spread"
    assert all((tmp_path / f).stat().st_size > 1000 for f in ("a.png", "b.png", "c.png"))


@pytest.mark.single_backend
@pytest.mark.parametrize("pairs", ["0", "-5", "ten"])
def test_pairs_must_be_a_positive_count(pairs, capsys):
    import argparse

    parser = evaluation.add_arguments(argparse.ArgumentParser())
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["--run", "A=runs/a", "--pairs", pairs])
    assert exit_info.value.code == 2 and "--pairs" in capsys.readouterr().err


@pytest.mark.single_backend
def test_a_corpus_folder_and_a_model_file_are_evaluated_directly(tmp_path):
    from keras_asr import saving

    path = str(tmp_path / "m.keras")
    saving.save_model(build_model(context=16), path)
    pools = evaluation.corpus_pools(fixture_root(), "test")
    assert sorted(pools) == [1.0, 2.0]  # the test piece's renders at tempo 1 (3 SoundFonts) and 2
    assert {pools[1.0].example_performance[k].rsplit("_", 1)[-1] for k in range(3)} == {"GM", "General", "TimGM6mb"}
    progress = io.StringIO()
    text, results = evaluation.evaluate_runs({"untrained": path}, split="test", pairs=60, corpus=fixture_root(),
                                             log=progress)
    # A line per table as it is done: Table 2 (refined) and one per tempo of Table 3.
    lines = progress.getvalue().splitlines()
    assert [line.split("] ", 1)[1].split(":")[0] for line in lines] == [
        "untrained, Table 2, refined CCA", "untrained, Table 3, tempo x1", "untrained, Table 3, tempo x2"]
    assert "audio -> sheet MRR" in lines[0] and "sheet -> audio MRR" in lines[0]
    assert results["dataset"] == fixture_root() and results["pairs"] == len(pools[1.0].eval_indices(60)) > 10
    assert set(results["table2b"]["untrained"]) == {"audio2sheet", "sheet2audio"} and not results["table2a"]
    assert sorted(results["table3"]["untrained"]) == ["1.0", "2.0"] and "Table 3" in text
    one = evaluation.corpus_pools(fixture_root(), "test", soundfont="MuseScore_General")
    assert sorted(one) == [1.0, 2.0] and len(one[1.0].example_performance) == 1
    with pytest.raises(FileNotFoundError, match="not a corpus root.*split.yaml"):
        evaluation.corpus_pools(tmp_path)
