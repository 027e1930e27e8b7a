"""The paper's training schedule in one call.

Adam (lr 0.002), batches of 100 pairs, an epoch of 10,000 pairs; early stopping on the audio -> sheet MRR of
the first 1,000 validation pairs (or 1,000 spread over the split: `validation_sample`) with patience 60, then
up to 5 rounds of restore-best + lr * 0.5 with patience 10; finally the CCA statistics are refitted on the
first 25,000 training pairs. Every argument defaults to the paper's value; shrink them for a short run.

Example:

```python
model, history = keras_asr.training.train("SC", dataset="msmd/small", output_dir="outputs/bl2_sc")
```
"""

import argparse
import inspect
import json
import logging
import math
import os
import re

import numpy as np

from keras_asr import callbacks as asr_callbacks
from keras_asr import sources
from keras_asr.checkpoint import copy_weights
from keras_asr.data import PairPool
from keras_asr.distribution import data_parallel
from keras_asr.losses import LOSSES
from keras_asr.models import CONTEXTS
from keras_asr.models import PRECISIONS
from keras_asr.models import build_model
from keras_asr.models import compile_model
from keras_asr.models import resolve_context
from keras_asr.models.encoders import EMBEDDING_DIM

def model_name(context, attention=False, head="dense"):
    """The paper's name of a configuration, e.g. "BL2-LC+AT"."""
    ctx = {frames: name for name, frames in CONTEXTS.items()}.get(context, context)
    return f"{'BL2' if head == 'dense' else 'BL1'}-{ctx}{'+AT' if attention else ''}"


# What `keras-asr train` computes in; see "Training speed" in the README for the measurements behind it.
DEFAULT_PRECISION = "float32"


def train(
    context="SC",
    attention=False,
    head="dense",
    dataset="msmd/small",
    data_dir=None,
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
    validation_sample="first",
    refine_pairs=25_000,
    refine_sample="first",
    time_limit=None,
    seed=0,
    verbose=2,
    model=None,
    extra_callbacks=(),
    precision=DEFAULT_PRECISION,
    page_augment=0.0,
    loss="hinge",
    tempo_augment=None,
    init_from=None,
    train_performances=None,
):
    """Trains a retrieval model with the paper's schedule; resumes from `output_dir` if it holds a checkpoint.

    Args:
        context: "SC", "MC", "LC" or a number of frames (multiple of 16).
        attention: add the soft-attention pathway.
        head: "dense" (BL2) or "gap" (BL1).
        dataset: TFDS name of the corpus ("msmd/small", "msmd/full", "msmd/msmd_v1_1").
        data_dir: TFDS data directory (None: TFDS's default, `$TFDS_DATA_DIR` or ~/tensorflow_datasets).
        train_pool: a `PairPool` to train on instead of `dataset`'s train split.
        valid_pool: a `PairPool` to validate on instead of `dataset`'s valid split.
        output_dir: checkpoints, `history.json` and `model.keras` go here; None: no files. Creating the file
            `output_dir/STOP` ends training after the current epoch, like `time_limit`.
        epochs: upper bound on epochs (the schedule normally stops first).
        learning_rate: initial Adam learning rate.
        batch_size: pairs per batch (keep it well above the 32-d embedding: the CCA fits the batch).
        pairs_per_epoch: pairs per epoch.
        patience: epochs without validation-MRR improvement before the first refinement round.
        refinement_rounds: rounds of restore-best + lr * 0.5 (0: plain early stopping).
        refinement_patience: patience within the rounds.
        validation_pairs: this many validation pairs give the MRR.
        validation_sample: "first" (the paper: the first `validation_pairs` pairs in piece order, on a corpus in
            piece order its first few pieces) or "spread" (evenly spaced over all validation pairs). A run resumed
            with another validation set re-scores its best weights on the new one before it goes on.
        refine_pairs: training pairs embedded to refit the CCA at the end (0: no refinement).
        refine_sample: "first" (the paper: the first `refine_pairs` pairs in piece order) or "spread" (evenly
            spaced over all training pairs; better on a large corpus, whose first pairs are a few pieces).
        time_limit: stop after this many seconds (checked per epoch), then restore the best weights and refine.
        seed: seed of the training stream.
        verbose: `fit` verbosity.
        model: a compiled or uncompiled `RetrievalModel` to train instead of building one.
        extra_callbacks: further Keras callbacks.
        precision: "float32" or "mixed_bfloat16" (bfloat16 convolutions with float32 weights, CCA and loss;
            see `build_model`). Ignored when `model` is given.
        page_augment: strength in [0, 1] of the page degradations applied to training snippets
            (`keras_asr.page_augment`: rotation, skew, ink, blur, contrast, binarisation, noise); 0: off.
        tempo_augment: None, or (slowest, fastest) tempo factors, e.g. (0.5, 2.0): each training excerpt is cut as
            if played that many times as fast, the factor drawn log-uniformly per pair (`PairPool.tempo_augment`).
        train_performances: None, or a regular expression: train only on the performances of `dataset`'s train
            split whose `piece/performance` name it matches (an ablation on a subset of the renders, e.g. the dry
            ones); the epoch stays `pairs_per_epoch` pairs.
        init_from: a trained `RetrievalModel` or its `.keras` path to start from (`keras_asr.warm_start`: every
            layer of the same name and shapes is copied, e.g. BL2-SC's sheet tower and audio convolutions into
            BL2-LC+AT); applied to a fresh run only, a resumed run continues from its checkpoint.
        loss: a name of `keras_asr.losses.LOSSES` ("hinge": the paper's, "infonce") or a `keras.losses.Loss`;
            ignored when `model` comes compiled. A checkpoint resumes only with the loss it was trained with.

    Under the JAX backend on a machine with several devices, each batch is split over all of them
    (`keras_asr.distribution.data_parallel`); the CCA still fits the whole batch.

    Returns:
        (model, history): the trained model (best weights, refined CCA) and a list of per-epoch log dicts.

    Raises:
        FloatingPointError: the loss became NaN or inf (the last good checkpoint is left untouched).
    """
    if refine_sample not in asr_callbacks.REFINE_SAMPLES:  # before minutes of data loading
        raise ValueError(f"refine_sample must be one of {asr_callbacks.REFINE_SAMPLES}, got {refine_sample!r}.")
    if validation_sample not in asr_callbacks.VALIDATION_SAMPLES:
        raise ValueError(f"validation_sample must be one of {asr_callbacks.VALIDATION_SAMPLES}, got "
                         f"{validation_sample!r}.")
    if not 0.0 <= page_augment <= 1.0:
        raise ValueError(f"page_augment must be in [0, 1], got {page_augment!r}.")
    if tempo_augment is not None:
        tempo_augment = tuple(float(f) for f in tempo_augment)
        if len(tempo_augment) != 2 or not 0 < tempo_augment[0] <= tempo_augment[1] < float("inf"):
            raise ValueError(f"tempo_augment must be (slowest, fastest) with 0 < slowest <= fastest, got "
                             f"{tempo_augment!r}.")
    if train_pool is None:
        train_pool = PairPool.from_tfds("train", name=dataset, data_dir=data_dir, performances=train_performances)
        if train_performances is not None:
            print(f"Training on the {len(train_pool.example_performance)} performances of "
                  f"{len(set(train_pool.example_piece))} pieces that match {train_performances!r} "
                  f"({len(train_pool)} pairs).")
    train_pool.page_augment = page_augment
    train_pool.tempo_augment = tempo_augment
    if valid_pool is None:
        valid_pool = PairPool.from_tfds("valid", name=dataset, data_dir=data_dir)
    if model is None:
        data_parallel(batch_size)  # before the variables exist: they are placed on every device
        model = build_model(context=context, attention=attention, head=head, precision=precision)
    if getattr(model, "optimizer", None) is None:
        compile_model(model, learning_rate=learning_rate, loss=loss)
    frames = model.frames

    val_idx = asr_callbacks.validation_indices(valid_pool, validation_pairs, validation_sample)
    validation = {"pairs": int(len(val_idx)), "sample": validation_sample}
    schedule = asr_callbacks.RefinementSchedule(
        patience=patience, refinement_rounds=refinement_rounds, refinement_patience=refinement_patience)
    guard = asr_callbacks.NaNGuard()
    validate = asr_callbacks.ValidationMRR(valid_pool.batch(val_idx, frames), batch_size=batch_size)
    cbs = [validate, guard]
    initial_epoch = 0
    checkpoint = None
    if output_dir is not None:
        checkpoint = asr_callbacks.EpochCheckpoint(os.path.join(output_dir, "checkpoint"), schedule, validation)
        initial_epoch = checkpoint.restore(model)
        if initial_epoch:
            print(f"Resuming from {checkpoint.directory} after epoch {initial_epoch}.")
            if checkpoint.restored_validation != validation:
                _rescore_best(model, schedule, validate, checkpoint, validation, initial_epoch)
    if init_from is not None and not initial_epoch:
        from keras_asr import warm_start

        print(warm_start.warm_start(model, init_from).summary())
    cbs += [schedule]
    if checkpoint is not None:
        cbs.append(checkpoint)
    if time_limit is not None:
        cbs.append(asr_callbacks.TimeLimit(time_limit))
    if output_dir is not None:
        cbs.append(asr_callbacks.StopFile(os.path.join(output_dir, "STOP")))
    cbs += list(extra_callbacks)
    refinement = None
    if refine_pairs and min(refine_pairs, len(train_pool)) <= model.cca.dim:
        # Fail now rather than after hours of training.
        raise ValueError(
            f"The CCA refinement needs more than {model.cca.dim} training pairs; the training data has "
            f"{len(train_pool)} and refine_pairs is {refine_pairs}. Use more data or refine_pairs=0.")
    if refine_pairs:
        unrefined = os.path.join(output_dir, "model_unrefined.keras") if output_dir else None
        refinement = asr_callbacks.CCARefinement(train_pool, refine_pairs, batch_size, unrefined,
                                                 spread=refine_sample == "spread")
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
        from keras_asr import atomic
        from keras_asr import saving

        # Written beside and renamed, as checkpoints are: a kill here leaves the previous files whole.
        with atomic.written_beside(os.path.join(output_dir, "history.json")) as temporary:
            with open(temporary, "w") as f:
                json.dump({"best_epoch": schedule.best_epoch + 1, "best_val_mrr": schedule.best,
                           "refined": refinement is not None, "history": history}, f, indent=1)
        saving.save_model(model, os.path.join(output_dir, "model.keras"))
    return model, history


def _rescore_best(model, schedule, validate, checkpoint, validation, epoch):
    """The run resumes with another validation set: its best value so far is re-measured on the new one.

    Otherwise a later epoch would be compared with a number from another metric. The change is recorded in
    the checkpoint (`validation_changes`), so a plot of the curve can mark where the metric changed.
    """
    before, old = schedule.best, checkpoint.restored_validation
    if schedule.best_weights is not None:
        latest = copy_weights(model)
        model.set_weights(schedule.best_weights)
        schedule.best = float(validate.score(model))
        model.set_weights(latest)
    checkpoint.validation_changes.append({"after_epoch": epoch, "from": old, "to": validation,
                                          "best_before": before, "best_after": schedule.best})

    def described(v):
        return f"{'an unrecorded number of' if v['pairs'] is None else v['pairs']} {v['sample']}"

    print(f"The validation set changed ({described(old)} -> {described(validation)} pairs): the best weights "
          f"so far (epoch {schedule.best_epoch + 1}) score {schedule.best:.4f} on it ({before:.4f} on the old one).")


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
        "refinement_patience", "validation_pairs", "validation_sample", "refine_pairs",
    )
}


def _checked(kind, minimum=None, above=None, at_most=None):
    """An argparse type: `kind` ("int" or "float"), finite, >= `minimum` or > `above`, <= `at_most`; refused
    before any work."""

    def parse(text):
        try:
            value = int(text) if kind == "int" else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"expected at least {minimum}, got {text}")
        if above is not None and value <= above:
            raise argparse.ArgumentTypeError(f"expected more than {above}, got {text}")
        if at_most is not None and value > at_most:
            raise argparse.ArgumentTypeError(f"expected at most {at_most}, got {text}")
        return value

    return parse


def add_arguments(parser):
    """The arguments of `examples/train.py` and `keras-asr train`: `train()`'s, paper values as defaults.

    Numbers out of range (`--epochs 0`, a NaN or negative learning rate, a batch the CCA cannot fit) are usage
    errors, reported before any data loads.
    """
    d = PAPER_DEFAULTS
    count, natural = _checked("int", minimum=1), _checked("int", minimum=0)
    parser.add_argument("--context", default="SC", help="SC, MC, LC or frames (multiple of 16)")
    parser.add_argument("--attention", action="store_true", help="add the soft-attention pathway (+AT)")
    parser.add_argument("--head", default="dense", choices=["dense", "gap"], help="dense = BL2, gap = BL1")
    parser.add_argument("--dataset", default="msmd/small", help="TFDS name: msmd/small, msmd/full, msmd/msmd_v1_1")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory (default: TFDS's)")
    parser.add_argument("--output", required=True, help="output folder (checkpoints, history.json, model.keras)")
    parser.add_argument("--epochs", type=count, default=10_000, help="upper bound on epochs")
    parser.add_argument("--learning-rate", type=_checked("float", above=0), default=d["learning_rate"])
    # The CCA of a batch at or below twice the embedding size fits it exactly (loss 0): refuse it here.
    parser.add_argument("--batch-size", type=_checked("int", above=2 * EMBEDDING_DIM), default=d["batch_size"])
    parser.add_argument("--pairs-per-epoch", type=count, default=d["pairs_per_epoch"])
    parser.add_argument("--patience", type=count, default=d["patience"])
    parser.add_argument("--refinement-rounds", type=natural, default=d["refinement_rounds"])
    parser.add_argument("--refinement-patience", type=count, default=d["refinement_patience"])
    parser.add_argument("--validation-pairs", type=count, default=d["validation_pairs"])
    parser.add_argument("--validation-sample", choices=asr_callbacks.VALIDATION_SAMPLES,
                        default=d["validation_sample"],
                        help="validate on the first --validation-pairs pairs (paper) or on pairs spread over all "
                             "of them (every piece of the split)")
    parser.add_argument("--refine-pairs", type=natural, default=d["refine_pairs"])
    parser.add_argument("--refine-sample", choices=asr_callbacks.REFINE_SAMPLES, default="first",
                        help="refit the CCA on the first --refine-pairs training pairs (paper) or on pairs spread "
                             "over all of them")
    parser.add_argument("--time-limit", type=_checked("float", above=0), default=None,
                        help="seconds; then restore best and refine")
    parser.add_argument("--seed", type=natural, default=0)
    parser.add_argument("--precision", choices=PRECISIONS, default=DEFAULT_PRECISION,
                        help="mixed_bfloat16: bfloat16 convolutions (float32 weights, CCA and loss)")
    parser.add_argument("--loss", choices=sorted(LOSSES), default="hinge",
                        help="hinge: the paper's pairwise ranking loss (margin 0.7); infonce: symmetric contrastive "
                             "cross-entropy (temperature 0.1)")
    parser.add_argument("--page-augment", type=_checked("float", minimum=0.0, at_most=1.0), default=0.0,
                        metavar="S", help="strength 0-1 of page degradations of training snippets (0: off)")
    parser.add_argument("--train-performances", type=_regex, default=None, metavar="REGEX",
                        help="train only on the performances whose PIECE/PERFORMANCE name matches (an ablation); "
                             "a REGEX that starts with - needs the = form: --train-performances='-dry$'")
    parser.add_argument("--init-from", default=None, metavar="MODEL.keras",
                        help="start from a trained model's weights wherever names and shapes fit (a fresh run only)")
    parser.add_argument("--tempo-augment", type=_tempo_range, default=None, metavar="SLOW,FAST",
                        help="cut training excerpts as if played SLOW-FAST times as fast (log-uniform per pair), "
                             "e.g. 0.5,2 (default: off)")
    return parser


def _regex(text):
    try:
        re.compile(text)
    except re.error as e:
        raise argparse.ArgumentTypeError(f"not a regular expression ({e}): {text!r}") from None
    return text


def _tempo_range(text):
    try:
        slowest, fastest = (float(f) for f in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SLOW,FAST (e.g. 0.5,2), got {text!r}") from None
    if not 0 < slowest <= fastest < float("inf"):
        raise argparse.ArgumentTypeError(f"expected 0 < SLOW <= FAST, got {text!r}")
    return slowest, fastest


def check_dataset(name, data_dir=None):
    """Raises a one-line ValueError unless the TFDS dataset `name` is built (training never builds one itself).

    `tfds.load` would otherwise start building a missing dataset, which for msmd/full takes hours.
    """
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)  # its warning about the missing folder would only repeat ours
    try:
        builder, imports = sources.tfds_builder(name, data_dir)
        prepared = builder.is_prepared()
    except Exception as e:  # tfds raises several types for an unknown name or config
        raise ValueError(f"Unknown dataset {name!r}: {str(e).splitlines()[0]}") from e
    finally:
        absl_logger.setLevel(level)
    if prepared:
        return
    command = f"tfds build {builder.name} --imports {imports} --config {builder.builder_config.name}"
    if getattr(builder.builder_config, "needs_manual_dir", False):
        command += " --manual_dir DIR"
    command += f" --data_dir {data_dir}" if data_dir else ""
    where = f"in {data_dir}" if data_dir else "in TFDS's data directory"
    raise ValueError(f"The dataset {name} is not built {where}: build it first with `{command}`.")


def train_from_arguments(args):
    """Runs `train()` on parsed `add_arguments` arguments and prints a one-line summary."""
    context = int(args.context) if str(args.context).isdigit() else args.context
    resolve_context(context)  # a bad --context fails here, not after the data loaded
    if args.init_from is not None and not os.path.isfile(args.init_from):
        raise ValueError(f"No model file at {args.init_from!r} to start from (--init-from).")
    check_dataset(args.dataset, args.data_dir)
    os.makedirs(args.output, exist_ok=True)
    model, history = train(
        context, attention=args.attention, head=args.head, dataset=args.dataset, data_dir=args.data_dir,
        output_dir=args.output, epochs=args.epochs, learning_rate=args.learning_rate, batch_size=args.batch_size,
        pairs_per_epoch=args.pairs_per_epoch, patience=args.patience, refinement_rounds=args.refinement_rounds,
        refinement_patience=args.refinement_patience, validation_pairs=args.validation_pairs,
        validation_sample=args.validation_sample,
        refine_pairs=args.refine_pairs, refine_sample=args.refine_sample, time_limit=args.time_limit,
        seed=args.seed, precision=args.precision, page_augment=args.page_augment, loss=args.loss,
        tempo_augment=args.tempo_augment, init_from=args.init_from,
        train_performances=args.train_performances)
    best = max(history, key=lambda h: h.get("val_mrr", -1)) if history else {}
    print(f"{model_name(model.frames, args.attention, args.head)}: {len(history)} epochs, best val MRR "
          f"{best.get('val_mrr', float('nan')):.4f} at epoch {best.get('epoch')}; saved {args.output}/model.keras")
    return model, history
