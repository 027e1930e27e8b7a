"""Evaluates trained runs as in the paper: Table 2 (without / with CCA refinement, both directions) on the fixed
test set, and Table 3 (audio -> sheet MRR per tempo ratio) on the tempo renders.

Each run folder is one written by `examples/train.py` (`model_unrefined.keras`, `model.keras`).

    KERAS_BACKEND=tensorflow python examples/evaluate.py --dataset msmd/small \
        --run BL2-SC=outputs/bl2_sc --run BL2-LC+AT=outputs/bl2_lc_at --out outputs/tables.md

`keras-asr evaluate` takes the same arguments.
"""

import argparse

from keras_asr import evaluation


def main(argv=None):
    parser = evaluation.add_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    evaluation.evaluate_from_arguments(parser.parse_args(argv))


if __name__ == "__main__":
    main()
