import glob
import json
import os

import keras
import numpy as np
import pytest

from keras_asr import build_model
from keras_asr import callbacks
from keras_asr import compile_model
from keras_asr import metrics as keras_asr_metrics
from keras_asr import sources
from keras_asr import training
from keras_asr.data import PairPool
from keras_asr.testing import fixture_root

CONTEXT = 16
# Two batches of 100 real pairs per epoch: the smallest run the CCA (batch >> 32) allows.
SHORT = dict(pairs_per_epoch=200, validation_pairs=100, refine_pairs=0, verbose=0)


def _records():
    # The committed fixture: three real Bach chorales, engraved and synthesized, about 150 pairs.
    return sources.read_corpus(fixture_root())


@pytest.fixture(scope="module")
def pool():
    return PairPool(_records())


def _train(pool, **kwargs):
    return training.train(CONTEXT, train_pool=pool, valid_pool=pool, **{**SHORT, **kwargs})


@pytest.fixture(scope="module")
def trained(pool, tmp_path_factory):
    """One epoch (two steps) of a real run with checkpoints: (model, history, output folder)."""
    folder = tmp_path_factory.mktemp("run")
    model, history = _train(pool, output_dir=str(folder), epochs=1)
    return model, history, folder


@pytest.mark.slow
def test_nan_loss_stops_and_saves_nothing(pool, tmp_path):
    model = build_model(context=CONTEXT)
    # A NaN weight makes the first step non-finite, as a diverged run would: the loss is NaN (JAX) or the
    # CCA's Cholesky fails (TensorFlow, torch); both must stop the run with a clear message.
    kernel = model.audio_tower.trainable_weights[0]
    kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    with pytest.raises(FloatingPointError, match="Training stopped"):
        _train(pool, model=model, output_dir=str(tmp_path), epochs=1, refine_pairs=150)
    assert not os.path.exists(tmp_path / "checkpoint" / "state.json")
    assert not glob.glob(str(tmp_path / "checkpoint" / "latest*.weights.h5"))
    assert not os.path.exists(tmp_path / "model.keras")


@pytest.mark.slow
def test_resume_restores_weights_optimizer_and_history(pool, trained):
    first, history, tmp_path = trained
    assert [h["epoch"] for h in history] == [1] and 0 < history[0]["val_mrr"] <= 1
    # A fresh process would build a fresh model: the checkpoint restores it exactly.
    fresh = compile_model(build_model(context=CONTEXT))
    ckpt = callbacks.EpochCheckpoint(str(tmp_path / "checkpoint"), callbacks.RefinementSchedule())
    assert ckpt.restore(fresh) == 1
    for a, b in zip(first.get_weights(), fresh.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert int(fresh.optimizer.iterations) == 2
    assert ckpt.schedule.best_epoch == 0 and ckpt.schedule.best_weights is not None
    # Rerunning the same call with a higher epoch budget continues at epoch 2.
    _, history = _train(pool, output_dir=str(tmp_path), epochs=2)
    assert [h["epoch"] for h in history] == [1, 2]
    with open(tmp_path / "checkpoint" / "state.json") as f:
        assert json.load(f)["epoch"] == 2


@pytest.mark.slow
def test_refinement_refits_cca_statistics(pool, trained):
    model = trained[0]
    before = {v.path: np.array(v) for v in model.cca.non_trainable_weights}
    corr = callbacks.refine_cca(model, pool, num_pairs=len(pool))
    assert corr.shape == (32,) and np.all((corr >= 0) & (corr <= 1 + 1e-6))
    after = {v.path: np.array(v) for v in model.cca.non_trainable_weights}
    changed = [p for p in before if not np.allclose(before[p], after[p])]
    assert any("mean" in p for p in changed) and any("projection" in p for p in changed)
    # The refitted projection whitens the sheet view of the pairs it was fitted on.
    sheet, _ = callbacks.embed_pre_cca(model, pool, np.arange(len(pool)))
    z = (sheet - np.array(model.cca.mean_x)) @ np.array(model.cca.projection_x)
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-3)


@pytest.mark.single_backend
def test_schedule_restores_best_and_halves_learning_rate():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(0.002), loss="mse")
    schedule = callbacks.RefinementSchedule(patience=2, refinement_rounds=1, refinement_patience=1, verbose=0)
    schedule.set_model(model)
    best = [w + 1 for w in model.get_weights()]
    model.set_weights(best)
    schedule.on_epoch_end(0, {"val_mrr": 0.5})  # best so far
    model.set_weights([w * 0 for w in best])  # training wanders off
    schedule.on_epoch_end(1, {"val_mrr": 0.4})
    assert float(model.optimizer.learning_rate) == pytest.approx(0.002)
    schedule.on_epoch_end(2, {"val_mrr": 0.4})  # patience 2 spent: round 1
    assert float(model.optimizer.learning_rate) == pytest.approx(0.001) and schedule.round == 1
    for a, b in zip(model.get_weights(), best):
        np.testing.assert_array_equal(a, b)
    assert not model.stop_training
    schedule.on_epoch_end(3, {"val_mrr": 0.3})  # patience 1 spent, no rounds left: stop
    assert model.stop_training


def test_too_few_pairs_for_refinement_fail_before_training(pool):
    one = PairPool(_records()[:1])
    assert len(one) <= 32
    with pytest.raises(ValueError, match="refine_pairs=0"):
        training.train(CONTEXT, train_pool=one, valid_pool=pool, **{**SHORT, "refine_pairs": 25_000})


def test_stop_file_ends_training_and_still_saves(pool, tmp_path):
    stop = tmp_path / "STOP"
    stop.write_text("")  # stale, from an earlier run: must not stop this one at once

    class TouchAfterFirstEpoch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                stop.write_text("")

    _, history = _train(pool, output_dir=str(tmp_path), epochs=5, refine_pairs=150, refine_sample="spread",
                        extra_callbacks=[TouchAfterFirstEpoch()])
    # Runs after StopFile in the epoch-1 callbacks, so StopFile sees the file at the end of epoch 2.
    assert [h["epoch"] for h in history] == [1, 2]
    assert (tmp_path / "model.keras").is_file() and (tmp_path / "model_unrefined.keras").is_file()


def test_spread_refinement_sample_covers_every_piece(pool):
    def pieces(indices):
        return {pool.example_piece[e] for e in pool.pair_example[indices]}

    n = int(np.sum(pool.pair_example == 0))  # the first performance's pairs
    first = callbacks.refinement_indices(pool, n)
    spread = callbacks.refinement_indices(pool, n, spread=True)
    assert len(first) == len(spread) == n < len(pool)
    assert len(pieces(first)) == 1 and len(pieces(spread)) == 3


def test_spread_validation_sample_covers_every_piece(pool):
    n = int(np.sum(pool.pair_example == 0))
    pieces = {s: {pool.example_piece[e] for e in pool.pair_example[callbacks.validation_indices(pool, n, s)]}
              for s in callbacks.VALIDATION_SAMPLES}
    assert pieces == {"first": {pool.example_piece[0]}, "spread": set(pool.example_piece)}
    with pytest.raises(ValueError, match="sample must be one of"):
        callbacks.validation_indices(pool, n, "random")


@pytest.mark.slow
def test_resuming_with_another_validation_set_rescores_the_best(pool, tmp_path):
    # A run validated on the first pairs, resumed on spread ones: its best must be measured on the new set,
    # or epoch 2 would be compared with a number from another metric.
    n = len(pool) // 2  # fewer than the pool, so that the two samples differ
    first, _ = _train(pool, output_dir=str(tmp_path), epochs=1, validation_pairs=n)
    spread = callbacks.validation_indices(pool, n, "spread")
    assert set(spread) != set(callbacks.validation_indices(pool, n, "first"))
    out = first.predict(pool.batch(spread, CONTEXT), batch_size=100, verbose=0)  # as ValidationMRR batches
    expected = float(keras_asr_metrics.mean_reciprocal_rank(out["audio_embedding"], out["sheet_embedding"]))
    _, history = _train(pool, output_dir=str(tmp_path), epochs=2, validation_pairs=n, validation_sample="spread")
    state = json.loads((tmp_path / "checkpoint" / "state.json").read_text())
    assert state["validation"] == {"pairs": n, "sample": "spread"}
    (change,) = state["validation_changes"]
    assert change["after_epoch"] == 1 and change["from"] == {"pairs": n, "sample": "first"}
    assert change["best_before"] == pytest.approx(history[0]["val_mrr"])
    assert change["best_after"] == pytest.approx(expected, abs=1e-4)  # float32 sums in another order
    assert state["schedule"]["best"] == pytest.approx(max(expected, history[1]["val_mrr"]), abs=1e-5)


@pytest.mark.slow
def test_a_checkpoint_without_its_validation_set_is_rescored_once(pool, tmp_path):
    # Checkpoints written before the validation set was recorded do not say how many pairs they took: the
    # resumed run re-measures the best weights rather than assume a count.
    n = len(pool) // 2
    _, history = _train(pool, output_dir=str(tmp_path), epochs=1, validation_pairs=n)
    path = tmp_path / "checkpoint" / "state.json"
    state = json.loads(path.read_text())
    del state["validation"]
    path.write_text(json.dumps(state))
    _train(pool, output_dir=str(tmp_path), epochs=2, validation_pairs=n)
    state = json.loads(path.read_text())
    (change,) = state["validation_changes"]
    assert change["from"] == {"pairs": None, "sample": "first"}
    assert change["to"] == state["validation"] == {"pairs": n, "sample": "first"}
    # It was the same set after all: the re-measured best is the recorded one.
    assert change["best_after"] == pytest.approx(history[0]["val_mrr"], abs=1e-4)


@pytest.mark.slow
def test_resuming_with_another_architecture_is_one_line(trained):
    # The run of `trained` is BL2 with a 16-frame context; the same output folder with +AT must not resume it.
    other = compile_model(build_model(context=CONTEXT, attention=True))
    ckpt = callbacks.EpochCheckpoint(str(trained[2] / "checkpoint"))
    with pytest.raises(ValueError, match="written by another model") as error:
        ckpt.restore(other)
    assert "\n" not in str(error.value) and "attention False" in str(error.value)
    state = json.loads((trained[2] / "checkpoint" / "state.json").read_text())
    # The state names the weights it belongs to; no temporary or superseded file is left beside them.
    assert sorted(os.listdir(trained[2] / "checkpoint")) == sorted(["state.json", *state["files"].values()])


@pytest.mark.slow
def test_resuming_with_another_loss_is_one_line(trained):
    # The run of `trained` trained with the paper's hinge; the same folder with --loss infonce must not resume it.
    state = json.loads((trained[2] / "checkpoint" / "state.json").read_text())
    assert state["loss"] == {"class_name": "PairwiseRankingLoss", "config": {"margin": 0.7}}
    ckpt = callbacks.EpochCheckpoint(str(trained[2] / "checkpoint"))
    with pytest.raises(ValueError, match=r"trained with the loss PairwiseRankingLoss\(margin=0.7\), not "
                                         r"InfoNCELoss\(temperature=0.1\)"):
        ckpt.restore(compile_model(build_model(context=CONTEXT), loss="infonce"))
    assert ckpt.restore(compile_model(build_model(context=CONTEXT))) == state["epoch"]


@pytest.mark.slow
def test_training_takes_its_loss(pool, tmp_path):
    # `keras-asr train --loss infonce`: the contrastive loss trains the same model and is what resumes.
    model, history = _train(pool, output_dir=str(tmp_path), epochs=2, loss="infonce")
    assert type(model.loss).__name__ == "InfoNCELoss" and len(history) == 2
    assert np.all(np.isfinite([h["loss"] for h in history]))
    # Two epochs of random batches need not lower the loss (it rose on one CI machine); steps on one fixed
    # batch must, if the compiled InfoNCE loss is what the optimizer descends.
    batch = pool.batch(pool.eval_indices(100), CONTEXT)
    steps = [float(model.train_on_batch(batch, return_dict=True)["loss"]) for _ in range(4)]
    assert np.all(np.isfinite(steps)) and steps[-1] < steps[0]
    with pytest.raises(ValueError, match="trained with the loss InfoNCELoss"):
        _train(pool, output_dir=str(tmp_path), epochs=3)
