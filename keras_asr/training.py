"""The paper's training schedule in one call.

Adam (lr 0.002), batches of 100 pairs, an epoch of 10,000 pairs; early stopping on the audio -> sheet MRR of
the first 1,000 validation pairs with patience 60, then up to 5 rounds of restore-best + lr * 0.5 with
patience 10; finally the CCA statistics are refitted on the first 25,000 training pairs. Every argument
defaults to the paper's value; shrink them for a short run.

Example:

```python
model, history = keras_asr.training.train("SC", dataset="msmd/small", output_dir="outputs/bl2_sc")
```
"""

import inspect
import json
import os

import numpy as np

from keras_asr import callbacks as asr_callbacks
from keras_asr.data import PairPool
from keras_asr.models import CONTEXTS
from keras_asr.models import build_model
from keras_asr.models import compile_model

def model_name(context, attention=False, head="dense"):
    """The paper's name of a configuration, e.g. "BL2-LC+AT"."""
    ctx = {frames: name for name, frames in CONTEXTS.items()}.get(context, context)
    return f"{'BL2' if head == 'dense' else 'BL1'}-{ctx}{'+AT' if attention else ''}"


def train(
    context="SC",
    attention=False,
    head="dense",
    dataset="msmd/small",
    train_pool=None,
    valid_pool=None,
    output_dir=None,
    epochs=10_000,
    learning_rate=0.002,
    batch_size=100,
    pairs_per_epoch=10_000,
    patience=60,
    refinement_rounds=5,
    refinement_patience=10,
    validation_pairs=1_000,
    refine_pairs=25_000,
    time_limit=None,
    seed=0,
    verbose=2,
    model=None,
    extra_callbacks=(),
):
    """Trains a retrieval model with the paper's schedule; resumes from `output_dir` if it holds a checkpoint.

    Args:
        context: "SC", "MC", "LC" or a number of frames (multiple of 16).
        attention: add the soft-attention pathway.
        head: "dense" (BL2) or "gap" (BL1).
        dataset: TFDS name of the corpus ("msmd/small", "msmd/full", "msmd/msmd_v1_1").
        train_pool: a `PairPool` to train on instead of `dataset`'s train split.
        valid_pool: a `PairPool` to validate on instead of `dataset`'s valid split.
        output_dir: checkpoints, `history.json` and `model.keras` go here; None: no files.
        epochs: upper bound on epochs (the schedule normally stops first).
        learning_rate: initial Adam learning rate.
        batch_size: pairs per batch (keep it well above the 32-d embedding: the CCA fits the batch).
        pairs_per_epoch: pairs per epoch.
        patience: epochs without validation-MRR improvement before the first refinement round.
        refinement_rounds: rounds of restore-best + lr * 0.5 (0: plain early stopping).
        refinement_patience: patience within the rounds.
        validation_pairs: the first this many validation pairs give the MRR.
        refine_pairs: training pairs embedded to refit the CCA at the end (0: no refinement).
        time_limit: stop after this many seconds (checked per epoch), then restore the best weights and refine.
        seed: seed of the training stream.
        verbose: `fit` verbosity.
        model: a compiled or uncompiled `RetrievalModel` to train instead of building one.
        extra_callbacks: further Keras callbacks.

    Returns:
        (model, history): the trained model (best weights, refined CCA) and a list of per-epoch log dicts.

    Raises:
        FloatingPointError: the loss became NaN or inf (the last good checkpoint is left untouched).
    """
    if train_pool is None:
        train_pool = PairPool.from_tfds("train", name=dataset)
    if valid_pool is None:
        valid_pool = PairPool.from_tfds("valid", name=dataset)
    if model is None:
        model = build_model(context=context, attention=attention, head=head)
    if getattr(model, "optimizer", None) is None:
        compile_model(model, learning_rate=learning_rate)
    frames = model.frames

    val_idx = np.arange(min(validation_pairs, len(valid_pool)))
    schedule = asr_callbacks.RefinementSchedule(
        patience=patience, refinement_rounds=refinement_rounds, refinement_patience=refinement_patience)
    guard = asr_callbacks.NaNGuard()
    cbs = [asr_callbacks.ValidationMRR(valid_pool.batch(val_idx, frames), batch_size=batch_size), guard]
    initial_epoch = 0
    checkpoint = None
    if output_dir is not None:
        checkpoint = asr_callbacks.EpochCheckpoint(os.path.join(output_dir, "checkpoint"), schedule)
        initial_epoch = checkpoint.restore(model)
        if initial_epoch:
            print(f"Resuming from {checkpoint.directory} after epoch {initial_epoch}.")
    cbs += [schedule]
    if checkpoint is not None:
        cbs.append(checkpoint)
    if time_limit is not None:
        cbs.append(asr_callbacks.TimeLimit(time_limit))
    cbs += list(extra_callbacks)
    refinement = None
    if refine_pairs:
        unrefined = os.path.join(output_dir, "model_unrefined.keras") if output_dir else None
        refinement = asr_callbacks.CCARefinement(train_pool, refine_pairs, batch_size, unrefined)
        cbs.append(refinement)  # after the schedule: refine the restored best weights

    train_ds = train_pool.dataset(frames, batch_size=batch_size, training=True, seed=seed + initial_epoch)
    steps = max(1, pairs_per_epoch // batch_size)
    try:
        fit = model.fit(train_ds, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=steps,
                        callbacks=cbs, verbose=verbose)
    except Exception as e:
        # NaN embeddings usually fail inside the CCA's Cholesky (an error on TF and torch) before any loss is
        # logged; the epoch in progress is then lost and the last checkpoint stays intact.
        if not _numeric_failure(e):
            raise
        raise FloatingPointError(
            f"Training stopped: non-finite values in the model ({type(e).__name__}: {str(e).splitlines()[0]}). "
            "The weights of this epoch were not saved; the last checkpoint is intact. Lower the learning rate "
            "or check the inputs for NaN/inf before resuming.") from e
    if guard.message:
        raise FloatingPointError(guard.message)
    history = checkpoint.history if checkpoint is not None else _history(fit)
    if output_dir is not None:
        with open(os.path.join(output_dir, "history.json"), "w") as f:
            json.dump({"best_epoch": schedule.best_epoch + 1, "best_val_mrr": schedule.best,
                       "refined": refinement is not None, "history": history}, f, indent=1)
        model.save(os.path.join(output_dir, "model.keras"))
    return model, history


def _numeric_failure(error):
    text = f"{type(error).__name__} {error}".lower()
    keys = ("nan", "infinite", "non-finite", "checknumerics", "cholesky", "positive-definite",
            "positive definite", "linalgerror")
    return any(k in text for k in keys)


def _history(fit):
    keys = list(fit.history)
    n = len(fit.history[keys[0]]) if keys else 0
    return [{"epoch": fit.epoch[i] + 1, **{k: float(fit.history[k][i]) for k in keys}} for i in range(n)]


# The schedule's numbers as `train()` defines them (one source of truth for the example scripts).
PAPER_DEFAULTS = {
    name: inspect.signature(train).parameters[name].default
    for name in (
        "learning_rate", "batch_size", "pairs_per_epoch", "patience", "refinement_rounds",
        "refinement_patience", "validation_pairs", "refine_pairs",
    )
}
