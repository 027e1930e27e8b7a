"""Evaluates trained runs as in the paper: Table 2 (without / with CCA refinement, both directions) on the fixed
test set, and Table 3 (audio -> sheet MRR per tempo ratio) on the tempo renders.

Each run folder is one written by `examples/train.py` (`model_unrefined.keras`, `model.keras`).

    KERAS_BACKEND=tensorflow python examples/evaluate.py --dataset msmd/small \
        --run BL2-SC=outputs/bl2_sc --run BL2-LC+AT=outputs/bl2_lc_at --out outputs/tables.md
"""

import argparse
import json
import os

from keras_asr import evaluation
from keras_asr import metrics
from keras_asr.data import PairPool
from keras_asr.saving import load_model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", required=True, help="NAME=DIR of a training run (repeatable)")
    p.add_argument("--dataset", default="msmd/small", help="TFDS name (test and test_tempo splits)")
    p.add_argument("--split", default="test")
    p.add_argument("--tempo-split", default="test_tempo", help="'' to skip Table 3")
    p.add_argument("--pairs", type=int, default=10_000, help="size of the fixed test set")
    p.add_argument("--out", default=None, help="write the tables (Markdown) here, and the numbers as .json")
    a = p.parse_args(argv)

    pool = PairPool.from_tfds(a.split, name=a.dataset)
    tempo = evaluation.tempo_pools(a.dataset, a.tempo_split) if a.tempo_split else {}
    n = len(pool.eval_indices(a.pairs))
    table2a, table2b, table3 = {}, {}, {}
    for spec in a.run:
        name, folder = spec.split("=", 1)
        unrefined = os.path.join(folder, "model_unrefined.keras")
        if os.path.exists(unrefined):
            table2a[name] = evaluation.evaluate_model(load_model(unrefined), pool, a.pairs)
        model = load_model(os.path.join(folder, "model.keras"))
        table2b[name] = evaluation.evaluate_model(model, pool, a.pairs)
        if tempo:
            table3[name] = evaluation.evaluate_tempo(model, tempo, a.pairs)

    text = [f"Test set: {a.dataset} split {a.split}, {n} pairs ({n} candidates).", ""]
    for direction in metrics.DIRECTIONS:
        arrow = direction.replace("2", " -> ")
        if table2a:
            text += [metrics.format_table2(table2a, direction, f"Table 2a ({arrow}, no CCA refinement)"), ""]
        text += [metrics.format_table2(table2b, direction, f"Table 2b ({arrow}, refined CCA)"), ""]
    if table3:
        sizes = ", ".join(f"{r:g}: {len(pl.eval_indices(a.pairs))}" for r, pl in tempo.items())
        text += [metrics.format_table3(table3), "", f"Pairs per tempo ratio: {sizes}.", ""]
    text = "\n".join(text)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
        with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
            json.dump({"dataset": a.dataset, "pairs": n, "table2a": table2a, "table2b": table2b,
                       "table3": {k: {str(r): v for r, v in t.items()} for k, t in table3.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
