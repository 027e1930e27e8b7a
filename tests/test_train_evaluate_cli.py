"""End to end: `tfds build` of the committed real fixture, then `keras-asr train` (interrupted and resumed) and
`keras-asr evaluate` on it, as a user runs them on msmd/full."""

import json

import pytest
import tensorflow_datasets as tfds

from keras_asr import cli
from keras_asr.data import PairPool
from tfds_msmd.corpus.testing import make_tiny_corpus
from tfds_msmd.msmd import msmd_dataset_builder
from tfds_msmd.msmd.msmd_dataset_builder_test import RENDERS

pytestmark = [pytest.mark.single_backend, pytest.mark.slow]

# Context 16 and 200-pair epochs: the smallest real run (the CCA needs batches well above its 32 dimensions).
SHORT = ["--context", "16", "--dataset", "msmd/small", "--pairs-per-epoch", "200", "--validation-pairs", "50",
         "--patience", "1", "--refinement-rounds", "1", "--refinement-patience", "1"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """msmd/small built by TFDS from a tiny real corpus: six-measure excerpts of three chorales (train, valid,
    test), engraved and synthesized; enough training pairs for the CCA refinement (> 32)."""
    corpus = make_tiny_corpus(tmp_path_factory.mktemp("corpus"), n_pieces=3, max_measures=6, renders=RENDERS)
    path = tmp_path_factory.mktemp("tfds")
    builder = msmd_dataset_builder.Builder(config="small", data_dir=str(path))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=str(corpus)))
    return str(path)


def test_train_resume_and_evaluate(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    train_pairs = len(PairPool.from_tfds("train", name="msmd/small", data_dir=data_dir))
    args = ["train", *SHORT, "--data-dir", data_dir, "--output", str(run), "--refine-pairs", "10000"]

    # An "interrupted" run: one epoch, checkpointed; then the same command with a larger budget resumes it.
    assert cli.main([*args, "--epochs", "1"]) == 0
    assert cli.main([*args, "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "Resuming from" in out and "after epoch 1" in out
    assert f"CCA refined on {train_pairs} training pairs" in out
    history = json.loads((run / "history.json").read_text())
    assert [h["epoch"] for h in history["history"]] == [1, 2]
    assert (run / "model.keras").is_file() and (run / "model_unrefined.keras").is_file()

    tables = tmp_path / "tables.md"
    assert cli.main(["evaluate", "--dataset", "msmd/small", "--data-dir", data_dir, "--run", f"BL2-16={run}",
                     "--out", str(tables)]) == 0
    text = tables.read_text()
    for title in ("Table 2a (audio -> sheet", "Table 2b (audio -> sheet", "Table 2b (sheet -> audio", "Table 3"):
        assert title in text
    results = json.loads(tables.with_suffix(".json").read_text())
    test_pairs = len(PairPool.from_tfds("test", name="msmd/small", data_dir=data_dir))
    assert results["pairs"] == test_pairs
    for table in ("table2a", "table2b"):
        for direction in ("audio2sheet", "sheet2audio"):
            m = results[table]["BL2-16"][direction]
            assert 0 <= m["R@1"] <= m["R@5"] <= m["R@10"] <= m["R@25"] <= 100
            assert 1 <= m["MR"] <= test_pairs and 0 < m["MRR"] <= 1
    # The fixture's tempo renders: 1.0 and 2.0.
    assert sorted(results["table3"]["BL2-16"]) == ["1.0", "2.0"]


def test_an_ablation_trains_on_a_subset_of_the_renders_from_a_warm_start(data_dir, tmp_path, capsys):
    from keras_asr import build_model
    from keras_asr import saving

    source = tmp_path / "source.keras"
    saving.save_model(build_model(context=16), str(source))
    everything = PairPool.from_tfds("train", name="msmd/small", data_dir=data_dir)
    one_sound = PairPool.from_tfds("train", name="msmd/small", data_dir=data_dir, performances="_TimGM6mb$")
    assert set(one_sound.example_performance) == {p for p in everything.example_performance if "TimGM6mb" in p}
    assert 0 < len(one_sound) < len(everything)

    args = ["train", *SHORT, "--data-dir", data_dir, "--epochs", "1", "--refine-pairs", "0"]
    assert cli.main([*args, "--output", str(tmp_path / "run"), "--train-performances", "_TimGM6mb$",
                     "--init-from", str(source)]) == 0
    out = capsys.readouterr().out
    assert f"Training on the {len(one_sound.example_performance)} performances" in out
    assert "warm start: " in out and "CCA statistics copied; left as initialised: none" in out

    assert cli.main([*args, "--output", str(tmp_path / "none"), "--train-performances", "Steinway"]) == 1
    assert "No performance of msmd/small train matches 'Steinway'" in capsys.readouterr().err


def test_evaluate_rejects_a_folder_without_a_model(data_dir, tmp_path, capsys):
    assert cli.main(["evaluate", "--data-dir", data_dir, "--run", f"X={tmp_path}"]) == 1
    assert "No model.keras" in capsys.readouterr().err
    assert cli.main(["evaluate", "--data-dir", data_dir, "--run", str(tmp_path)]) == 1
    assert "NAME=DIR" in capsys.readouterr().err
