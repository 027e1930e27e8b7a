"""Trains a retrieval model with the paper's schedule (resumable), saving `model.keras` and the history.

Example (the paper's schedule on the offline corpus; TensorFlow is the fastest backend on CPU):

    KERAS_BACKEND=tensorflow python examples/train.py --context LC --attention --dataset msmd/small \
        --output outputs/bl2_lc_at

A short run: `--patience 5 --refinement-rounds 1 --refinement-patience 2 --time-limit 1800`.
Rerunning the same command after an interruption resumes from the last finished epoch.
"""

import argparse
import os

from keras_asr import training


def main(argv=None):
    d = training.PAPER_DEFAULTS
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--context", default="SC", help="SC, MC, LC or frames (multiple of 16)")
    p.add_argument("--attention", action="store_true", help="add the soft-attention pathway (+AT)")
    p.add_argument("--head", default="dense", choices=["dense", "gap"], help="dense = BL2, gap = BL1")
    p.add_argument("--dataset", default="msmd/small", help="TFDS name: msmd/small, msmd/full, msmd/msmd_v1_1")
    p.add_argument("--output", required=True, help="output folder (checkpoints, history.json, model.keras)")
    p.add_argument("--epochs", type=int, default=10_000, help="upper bound on epochs")
    p.add_argument("--learning-rate", type=float, default=d["learning_rate"])
    p.add_argument("--batch-size", type=int, default=d["batch_size"])
    p.add_argument("--pairs-per-epoch", type=int, default=d["pairs_per_epoch"])
    p.add_argument("--patience", type=int, default=d["patience"])
    p.add_argument("--refinement-rounds", type=int, default=d["refinement_rounds"])
    p.add_argument("--refinement-patience", type=int, default=d["refinement_patience"])
    p.add_argument("--validation-pairs", type=int, default=d["validation_pairs"])
    p.add_argument("--refine-pairs", type=int, default=d["refine_pairs"])
    p.add_argument("--time-limit", type=float, default=None, help="seconds; then restore best and refine")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    context = int(a.context) if a.context.isdigit() else a.context
    os.makedirs(a.output, exist_ok=True)
    model, history = training.train(
        context, attention=a.attention, head=a.head, dataset=a.dataset, output_dir=a.output, epochs=a.epochs,
        learning_rate=a.learning_rate, batch_size=a.batch_size, pairs_per_epoch=a.pairs_per_epoch,
        patience=a.patience, refinement_rounds=a.refinement_rounds, refinement_patience=a.refinement_patience,
        validation_pairs=a.validation_pairs, refine_pairs=a.refine_pairs, time_limit=a.time_limit, seed=a.seed)
    best = max(history, key=lambda h: h.get("val_mrr", -1)) if history else {}
    print(f"{training.model_name(model.frames, a.attention, a.head)}: {len(history)} epochs, best val MRR "
          f"{best.get('val_mrr', float('nan')):.4f} at epoch {best.get('epoch')}; saved {a.output}/model.keras")


if __name__ == "__main__":
    main()
