"""Callbacks of the paper's training schedule.

- `ValidationMRR`: audio -> sheet MRR on a fixed validation set after every epoch (`logs["val_mrr"]`).
- `RefinementSchedule`: early stopping on that MRR with a long patience, then up to N rounds of
  "restore the best weights, halve the learning rate, shorter patience" (the original Lasagne schedule).
- `NaNGuard`: stops at the first non-finite loss and marks the run broken, so nothing saves it.
- `EpochCheckpoint` (`keras_asr.checkpoint`): writes the weights (optimizer included) and every callback's state
  after each epoch, atomically, so a restarted run resumes losing at most the epoch in progress.
- `CCARefinement`: at the end of training, refits the CCA statistics on the first 25,000 training pairs.
- `TimeLimit`: stops after a wall-clock budget (short CPU runs), letting the end-of-training steps run.

Weights are copied through NumPy everywhere: on JAX, assigning one variable's array to another shares its
buffer (see PITFALLS).
"""

import math
import os
import time

import keras
import numpy as np

from keras_asr import metrics
from keras_asr.checkpoint import EpochCheckpoint  # noqa: F401 (one of the schedule's callbacks, in its own module)
from keras_asr.checkpoint import architecture  # noqa: F401
from keras_asr.checkpoint import copy_weights as _copy_weights
from keras_asr.checkpoint import is_broken as _is_broken


class ValidationMRR(keras.callbacks.Callback):
    """Adds the audio -> sheet MRR of a fixed validation set to the epoch logs.

    The model embeds both views with its inference CCA statistics, as retrieval would.

    Args:
        pairs: dict of NumPy arrays {"spectrogram": (n, 92, C), "sheet": (n, 80, 100)}, e.g. the first 1,000
            validation pairs (`PairPool.batch(range(1000), C)`) or 1,000 spread over all of them
            (`PairPool.batch(pool.eval_indices(1000), C)`).
        batch_size: prediction batch size.
        name: key written to the logs.
    """

    def __init__(self, pairs, batch_size=100, name="val_mrr"):
        super().__init__()
        self.pairs = pairs
        self.batch_size = batch_size
        self.name = name

    def score(self, model):
        """The validation MRR of `model` now."""
        out = model.predict(self.pairs, batch_size=self.batch_size, verbose=0)
        return metrics.mean_reciprocal_rank(out["audio_embedding"], out["sheet_embedding"])

    def on_epoch_end(self, epoch, logs=None):
        if logs is None or _is_broken(self.model):
            return
        logs[self.name] = self.score(self.model)


class RefinementSchedule(keras.callbacks.Callback):
    """Early stopping on a validation metric, followed by learning-rate refinement rounds.

    When `patience` epochs pass without improvement, the best weights are restored, the learning rate is
    multiplied by `factor` and patience becomes `refinement_patience`; after `refinement_rounds` such rounds
    training stops. At the end of training the best weights are restored.

    Args:
        monitor: log key to maximise.
        patience: epochs without improvement before the first refinement round (60 in the paper).
        refinement_rounds: rounds of restore + lr decay (5 in the paper).
        refinement_patience: patience within the rounds (10 in the paper).
        factor: learning-rate factor per round.
        verbose: print a line at every round.
    """

    def __init__(self, monitor="val_mrr", patience=60, refinement_rounds=5, refinement_patience=10,
                 factor=0.5, verbose=1):
        super().__init__()
        self.monitor = monitor
        self.patience = patience
        self.refinement_rounds = refinement_rounds
        self.refinement_patience = refinement_patience
        self.factor = factor
        self.verbose = verbose
        self.best = -math.inf
        self.best_epoch = -1
        self.best_weights = None
        self.wait = 0
        self.round = 0

    @property
    def current_patience(self):
        return self.patience if self.round == 0 else self.refinement_patience

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None or _is_broken(self.model):
            return
        if value > self.best:
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            self.best_weights = _copy_weights(self.model)
            return
        self.wait += 1
        if self.wait < self.current_patience:
            return
        if self.round >= self.refinement_rounds:
            if self.verbose:
                print(f"\nEpoch {epoch + 1}: no improvement after {self.refinement_rounds} refinement rounds; "
                      f"stopping (best {self.monitor} {self.best:.4f} at epoch {self.best_epoch + 1}).")
            self.model.stop_training = True
            return
        self.round += 1
        self.wait = 0
        lr = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)) * self.factor
        self.model.optimizer.learning_rate.assign(lr)
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)
        if self.verbose:
            print(f"\nEpoch {epoch + 1}: refinement round {self.round}/{self.refinement_rounds}: restored the "
                  f"weights of epoch {self.best_epoch + 1} ({self.monitor} {self.best:.4f}), lr -> {lr:g}, "
                  f"patience {self.refinement_patience}.")

    def on_train_end(self, logs=None):
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)

    # Resumption: the counters go to JSON, the best weights to a weights file (see `EpochCheckpoint`).
    def get_state(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "round": self.round}

    def set_state(self, state):
        self.best = state["best"]
        self.best_epoch = state["best_epoch"]
        self.wait = state["wait"]
        self.round = state["round"]


# Not keras.callbacks.TerminateOnNaN: it neither marks the model broken (the epoch's callbacks would validate,
# refine and CCA-refit NaN weights) nor ends in a FloatingPointError; raise_error=True skips every on_train_end.
class NaNGuard(keras.callbacks.Callback):
    """Stops training at the first non-finite loss and marks the model broken.

    A broken model is never checkpointed, validated or refined; `message` says what happened, and
    `keras_asr.training.train` raises it as a `FloatingPointError` after `fit` returns.
    """

    def __init__(self):
        super().__init__()
        self.message = None

    def on_train_begin(self, logs=None):
        self.model._asr_broken = False
        self.message = None

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        loss = float(keras.ops.convert_to_numpy(loss))
        if not math.isfinite(loss):
            self.model._asr_broken = True
            self.model.stop_training = True
            self.message = (
                f"Training stopped: the loss became {loss} at batch {batch + 1} of the current epoch. "
                "The weights of this epoch were not saved; the last checkpoint is intact. Lower the learning "
                "rate or check the inputs for NaN/inf before resuming."
            )
            print("\n" + self.message)


class TimeLimit(keras.callbacks.Callback):
    """Stops training once `seconds` of wall-clock time have passed (checked after every epoch)."""

    def __init__(self, seconds):
        super().__init__()
        self.seconds = seconds
        self.start = None

    def on_train_begin(self, logs=None):
        self.start = time.time()

    def on_epoch_end(self, epoch, logs=None):
        if self.seconds is not None and time.time() - self.start > self.seconds:
            print(f"\nEpoch {epoch + 1}: time limit of {self.seconds:.0f} s reached; stopping.")
            self.model.stop_training = True


class StopFile(keras.callbacks.Callback):
    """Stops training after the epoch in which a file appears (`touch OUTPUT/STOP`): a planned early end that,
    unlike killing the process, still restores the best weights, refines the CCA and saves the model.

    A file left over from an earlier run is removed when training begins.
    """

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_train_begin(self, logs=None):
        if os.path.exists(self.path):
            os.remove(self.path)

    def on_epoch_end(self, epoch, logs=None):
        if os.path.exists(self.path):
            print(f"\nEpoch {epoch + 1}: {self.path} found; stopping.")
            self.model.stop_training = True


def embed_pre_cca(model, pool, indices, batch_size=100, chunk=2000):
    """Pre-CCA (sheet, audio) embeddings of pool pairs `indices`, without augmentation.

    Returns:
        Two float32 arrays (len(indices), 32).
    """
    sheet, audio = [], []
    for start in range(0, len(indices), chunk):
        pairs = pool.batch(indices[start:start + chunk], model.frames)
        sheet.append(model.sheet_tower.predict(pairs["sheet"], batch_size=batch_size, verbose=0))
        audio.append(model.audio_tower.predict(pairs["spectrogram"], batch_size=batch_size, verbose=0))
    return np.concatenate(sheet), np.concatenate(audio)


class CCARefinement(keras.callbacks.Callback):
    """Refits the CCA layer's inference statistics on training pairs at the end of training.

    Embeds the first `num_pairs` pairs of `pool` (its fixed piece -> performance -> onset order, no
    augmentation; or pairs spread over it) with the trained towers and calls `model.cca.refine`. Runs after the
    schedule has restored the best weights (put it after `RefinementSchedule` in the callback list); skipped for
    a broken model.

    Args:
        pool: a `keras_asr.data.PairPool` of the training split.
        num_pairs: pairs to embed (25,000 in the paper; all of them if the pool is smaller).
        batch_size: prediction batch size.
        unrefined_path: if set, the model is saved here (`.keras`) before refining, for Table 2a.
        spread: take the pairs evenly spaced over `pool` instead of the first ones (see `refinement_indices`).
    """

    def __init__(self, pool, num_pairs=25_000, batch_size=100, unrefined_path=None, spread=False):
        super().__init__()
        self.spread = spread
        self.pool = pool
        self.num_pairs = num_pairs
        self.batch_size = batch_size
        self.unrefined_path = unrefined_path
        self.correlations = None

    def on_train_end(self, logs=None):
        if _is_broken(self.model):
            return
        if self.unrefined_path:
            from keras_asr.saving import save_model

            save_model(self.model, self.unrefined_path)
        self.correlations = refine_cca(self.model, self.pool, self.num_pairs, self.batch_size, self.spread)
        print(f"CCA refined on {min(self.num_pairs, len(self.pool))} training pairs "
              f"({'spread over' if self.spread else 'the first of'} {len(self.pool)}); canonical correlations "
              f"{self.correlations[:3].round(3)} ... {self.correlations[-1]:.3f}.")


# The samples `train(refine_sample=...)` offers: the paper's first pairs, or pairs spread over the pool.
REFINE_SAMPLES = ("first", "spread")
VALIDATION_SAMPLES = REFINE_SAMPLES  # the same two choices for the validation pairs


def validation_indices(pool, num_pairs=1_000, sample="first"):
    """The validation pairs: the first `num_pairs` of `pool` (the paper), or `num_pairs` evenly spaced over it
    (`sample="spread"`). In piece order, the first 1,000 pairs of a corpus are its first few pieces."""
    if sample not in VALIDATION_SAMPLES:
        raise ValueError(f"sample must be one of {VALIDATION_SAMPLES}, got {sample!r}.")
    return refinement_indices(pool, num_pairs, spread=sample == "spread")


def refinement_indices(pool, num_pairs=25_000, spread=False):
    """The pairs the CCA is refitted on: the first `num_pairs` of `pool` (the paper), or with `spread=True`
    `num_pairs` evenly spaced over it (`pool.eval_indices`), which covers every piece of a large pool instead of
    the first few in piece order."""
    return pool.eval_indices(num_pairs) if spread else np.arange(min(num_pairs, len(pool)))


def refine_cca(model, pool, num_pairs=25_000, batch_size=100, spread=False):
    """Refits `model.cca` on `refinement_indices(pool, num_pairs, spread)`; returns the canonical correlations."""
    indices = refinement_indices(pool, num_pairs, spread)
    sheet, audio = embed_pre_cca(model, pool, indices, batch_size)
    return model.cca.refine(sheet, audio)
