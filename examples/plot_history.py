"""Plots the validation MRR per epoch of training runs (from their `checkpoint/state.json`).

    python examples/plot_history.py --run BL2-SC=outputs/bl2_sc --run BL2-LC+AT=outputs/bl2_lc_at \
        --out outputs/figures/val_mrr.png
"""

import argparse
import json
import os

from keras_asr import plots


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--run", action="append", required=True, help="NAME=DIR of a training run (repeatable)")
    p.add_argument("--out", required=True)
    a = p.parse_args(argv)
    histories, changes = {}, {}
    for spec in a.run:
        name, folder = spec.split("=", 1)
        with open(os.path.join(folder, "checkpoint", "state.json")) as f:
            state = json.load(f)
        histories[name] = state["history"]
        # A run resumed with another validation set (--validation-sample): its curve changes metric there.
        changes[name] = [(c["after_epoch"], f"{c['to']['pairs']} {c['to']['sample']} validation pairs")
                         for c in state.get("validation_changes", [])]
        rows = histories[name]
        print(name, ", ".join(f"{h['epoch']}: {h.get('val_mrr', float('nan')):.3f}" for h in rows))
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    plots.plot_validation_curves(histories, changes=changes).savefig(a.out, dpi=110)
    print("wrote", a.out)


if __name__ == "__main__":
    main()
