"""Evaluates the original MSMD-trained BL1-SC model, converted to keras-asr, next to the paper's BL1-SC row.

Converts the original parameter file (`keras_asr.convert_original_params`), evaluates it on the fixed test set
(Table 2, both directions) with the CCA statistics it was shipped with, then refits its CCA on the first
training pairs (piece -> performance -> onset order, no augmentation; 25,000 in the paper) and evaluates
again. Optionally also Table 3 (MRR per tempo ratio) and the converted models as `.keras` files.

    KERAS_BACKEND=tensorflow python examples/evaluate_pretrained.py --dataset msmd/full \
        --out outputs/pretrained_bl1_sc.md --save-dir outputs/pretrained_bl1_sc

The parameter file is not part of the project: by default it is read from `$KERAS_ASR_ORIGINAL_PARAMS`, else
`<repo>/../shared/pretrained/params_all_split_mutopia_full_aug.pkl`.
"""

import argparse
import json
import os
import time

from keras_asr import evaluation
from keras_asr import metrics
from keras_asr.callbacks import refine_cca
from keras_asr.data import PairPool
from keras_asr.pretrained import ORIGINAL_PARAMS_FILE
from keras_asr.pretrained import convert_original_params

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_PARAMS = os.environ.get("KERAS_ASR_ORIGINAL_PARAMS") or os.path.normpath(
    os.path.join(REPO_ROOT, os.pardir, "shared", "pretrained", ORIGINAL_PARAMS_FILE))
# Table 2b of the paper (MSMD v1.1 test set, 10,000 candidates, audio -> sheet, refined CCA); no R@10 given.
PAPER_BL1_SC = "| paper BL1-SC (MSMD v1.1, refined CCA) | 19.12 | 44.16 | - | 66.63 | 0.31 | 8 |"


def load_pool(split, dataset, data_dir, one_render_per_piece=False):
    """A split's pairs; optionally only one render per piece (tempo closest to 1, first SoundFont by name).

    Renders of one piece share their snippets, and the metrics count identical candidates against the query,
    so a split with several renders per piece (e.g. train) is a fair test set only with one render each.
    """
    if not one_render_per_piece:
        return PairPool.from_tfds(split, name=dataset, data_dir=data_dir)
    import tensorflow_datasets as tfds

    import tfds_msmd  # noqa: F401  (registers the builder)

    chosen = {}
    for e in tfds.as_numpy(tfds.load(dataset, split=split, data_dir=data_dir)):
        key = (abs(float(e["tempo_ratio"]) - 1.0), e["soundfont"])
        if e["piece"] not in chosen or key < chosen[e["piece"]][0]:
            chosen[e["piece"]] = (key, e)
    return PairPool([e for _, e in chosen.values()])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--params", default=DEFAULT_PARAMS, help="the original parameter file (.pkl)")
    p.add_argument("--dataset", default="msmd/full", help="TFDS name with train, test (and test_tempo) splits")
    p.add_argument("--data-dir", default=None, help="TFDS data directory")
    p.add_argument("--split", default="test")
    p.add_argument("--train-split", default="train", help="pairs to refine the CCA on")
    p.add_argument("--tempo-split", default="", help="e.g. test_tempo for Table 3 ('' to skip)")
    p.add_argument("--one-render-per-piece", action="store_true",
                   help="evaluate on one render per piece of --split (to use e.g. train pieces as a test set)")
    p.add_argument("--pairs", type=int, default=10_000, help="size of the fixed test set")
    p.add_argument("--refine-pairs", type=int, default=25_000,
                   help="first training pairs for the CCA refit (0: no refit)")
    p.add_argument("--out", default=None, help="write the tables (Markdown) here, and the numbers as .json")
    p.add_argument("--save-dir", default=None,
                   help="write model_unrefined.keras and model.keras here (readable by examples/evaluate.py)")
    a = p.parse_args(argv)

    start = time.time()
    model = convert_original_params(a.params)
    pool = load_pool(a.split, a.dataset, a.data_dir, a.one_render_per_piece)
    n = len(pool.eval_indices(a.pairs))
    tempo = evaluation.tempo_pools(a.dataset, a.tempo_split, a.data_dir) if a.tempo_split else {}
    if a.save_dir:
        os.makedirs(a.save_dir, exist_ok=True)
        model.save(os.path.join(a.save_dir, "model_unrefined.keras"))

    shipped = "original, shipped CCA"
    table2 = {shipped: evaluation.evaluate_model(model, pool, a.pairs)}
    table3 = {shipped: evaluation.evaluate_tempo(model, tempo, a.pairs)} if tempo else {}

    renders = " (one render per piece)" if a.one_render_per_piece else ""
    text = [f"Test set: {a.dataset} split {a.split}{renders}, {n} pairs ({n} candidates) from {len(pool)} in the "
            f"pool."]
    num_refine, correlations = 0, None
    if a.refine_pairs:
        train = PairPool.from_tfds(a.train_split, name=a.dataset, data_dir=a.data_dir)
        num_refine = min(a.refine_pairs, len(train))
        correlations = refine_cca(model, train, num_refine)
        refined = f"original, CCA refined on {num_refine} {a.train_split} pairs"
        table2[refined] = evaluation.evaluate_model(model, pool, a.pairs)
        if tempo:
            table3[refined] = evaluation.evaluate_tempo(model, tempo, a.pairs)
        if a.save_dir:
            model.save(os.path.join(a.save_dir, "model.keras"))
        text.append(f"CCA refit on the first {num_refine} of {len(train)} {a.train_split} pairs (sum of canonical "
                    f"correlations {correlations.sum():.2f} / 32).")
    text.append("")
    for direction in metrics.DIRECTIONS:
        arrow = direction.replace("2", " -> ")
        text.append(metrics.format_table2(table2, direction, f"Table 2 ({arrow})"))
        if direction == "audio2sheet":
            text.append(PAPER_BL1_SC)
        text.append("")
    if table3:
        text += [metrics.format_table3(table3), ""]
    text.append(f"({time.time() - start:.0f} s)")
    text = "\n".join(text)
    print(text)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out, "w") as f:
            f.write(text + "\n")
        with open(os.path.splitext(a.out)[0] + ".json", "w") as f:
            json.dump({"dataset": a.dataset, "split": a.split, "pairs": n, "refine_pairs": num_refine,
                       "canonical_correlations": None if correlations is None else correlations.tolist(),
                       "table2": table2,
                       "table3": {k: {str(r): v for r, v in t.items()} for k, t in table3.items()}}, f, indent=1)


if __name__ == "__main__":
    main()
