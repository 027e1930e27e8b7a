"""Refits the CCA of a trained model on training pairs and saves the refined copy (the refinement step alone).

`examples/train.py` already refines at the end of training on the paper's sample (the first 25,000 training
pairs, in piece order). This script redoes the step on another sample, e.g. pairs spread over all pieces:

    KERAS_BACKEND=tensorflow python examples/refine_cca.py --model outputs/bl2_sc/model_unrefined.keras \
        --dataset msmd/full --sample spread --every 10 --out outputs/bl2_sc_spread/model.keras

`--every K` reads every K-th training performance only (bounds memory on a large corpus).
"""

import argparse
import os

from keras_asr.callbacks import REFINE_SAMPLES
from keras_asr.callbacks import refine_cca
from keras_asr.callbacks import refinement_indices
from keras_asr.data import PairPool
from keras_asr.saving import load_model


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help=".keras model to refine (e.g. model_unrefined.keras)")
    p.add_argument("--dataset", default="msmd/small", help="TFDS name")
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default: TFDS's)")
    p.add_argument("--split", default="train")
    p.add_argument("--pairs", type=int, default=25_000, help="pairs to fit the CCA on")
    p.add_argument("--sample", choices=REFINE_SAMPLES, default="spread",
                   help="the first --pairs pairs (paper) or --pairs evenly spaced over the split")
    p.add_argument("--every", type=int, default=1, help="read every K-th performance of the split")
    p.add_argument("--out", required=True, help=".keras file to write")
    a = p.parse_args(argv)

    import tensorflow_datasets as tfds

    import tfds_msmd  # noqa: F401  (registers the builder)

    ds = tfds.load(a.dataset, split=a.split, data_dir=a.data_dir)
    if a.every > 1:
        ds = ds.shard(a.every, 0)
    pool = PairPool(tfds.as_numpy(ds))
    model = load_model(a.model)
    spread = a.sample == "spread"
    corr = refine_cca(model, pool, a.pairs, spread=spread)
    pieces = len({pool.example_piece[e] for e in pool.pair_example[refinement_indices(pool, a.pairs, spread)]})
    print(f"CCA refit on {min(a.pairs, len(pool))} of {len(pool)} pairs ({a.sample}, {pieces} pieces); "
          f"canonical correlations {corr[:3].round(3)} ... {corr[-1]:.3f}")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    model.save(a.out)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
