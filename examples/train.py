"""Trains a retrieval model with the paper's schedule (resumable), saving `model.keras` and the history.

Example (the paper's schedule on the offline corpus; TensorFlow is the fastest backend on CPU):

    KERAS_BACKEND=tensorflow python examples/train.py --context LC --attention --dataset msmd/small \
        --output outputs/bl2_lc_at

A short run: `--patience 5 --refinement-rounds 1 --refinement-patience 2 --time-limit 1800`.
Rerunning the same command after an interruption resumes from the last finished epoch.
`keras-asr train` takes the same arguments.
"""

import argparse

from keras_asr import training


def main(argv=None):
    parser = training.add_arguments(argparse.ArgumentParser(description=__doc__.splitlines()[0]))
    training.train_from_arguments(parser.parse_args(argv))


if __name__ == "__main__":
    main()
