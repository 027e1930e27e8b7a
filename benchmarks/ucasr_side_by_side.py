"""This package's training step against the paper group's PyTorch code (luisfvc/ucasr), side by side.

    git clone https://github.com/luisfvc/ucasr /tmp/ucasr
    python benchmarks/ucasr_side_by_side.py --ucasr /tmp/ucasr --data-dir /tmp/speed_tfds

Both sides train on the same batches of real `msmd/small` pairs (batch 100, the augmenting batch reader of
`PairPool`), in alternating rounds so that a change in the machine's load hits both alike:

- ucasr: its own `VGGModel` (sheet and audio pathways, the attention block for LC+AT, its `CCALayer`), its own
  `triplet_loss` (margin 0.6, its configuration's value) and Adam with its learning rate and weight decay, one
  `zero_grad / forward / backward / step` per batch, as in its `iterate_dataset`, with torch on as many threads
  as the machine has cores;
- keras-asr: `train_on_batch` of `build_model(...)` compiled by `compile_model`, on the Keras backend this
  process runs (TensorFlow unless KERAS_BACKEND says otherwise).

ucasr's `models/custom_modules.py` imports madmom, torchaudio, elasticdeform and torch_audiomentations for its
pre-training front ends (spectrogram and score augmentation modules); `VGGModel(pretrain=False)`, the model
trained here, never builds them, so that one module is replaced by a placeholder whose classes refuse to be
built. Nothing else of ucasr is changed. Results go to benchmarks/results/ucasr_side_by_side.json.
"""

import argparse
import json
import os
import platform
import sys
import time
import types

from train_speed import VARIANTS  # the benchmark's variant table; it imports no backend

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def load_ucasr(root):
    """Imports ucasr's model and loss code from a checkout at `root` (the repository or its ucasr/ folder)."""
    root = os.path.abspath(root)
    if os.path.isdir(os.path.join(root, "ucasr", "models")):
        root_parent = root
    elif os.path.isdir(os.path.join(root, "models")):
        root_parent = os.path.dirname(root)
    else:
        raise SystemExit(f"{root}: not a checkout of luisfvc/ucasr (no ucasr/models/ in it)")

    def front_end(*args, **kwargs):
        raise RuntimeError("ucasr's pre-training front ends are not part of this benchmark")

    placeholder = types.ModuleType("ucasr.models.custom_modules")
    placeholder.LogSpectrogramModule = placeholder.ScoreAugModule = front_end
    sys.modules["ucasr.models.custom_modules"] = placeholder
    sys.path.insert(0, root_parent)
    from ucasr.models.vgg_model import VGGModel
    from ucasr.utils.losses import triplet_loss

    return VGGModel, triplet_loss


def ucasr_args(audio_context, use_att):
    """The fields of ucasr's msmd_config.yaml that its model reads (same geometry as this package's)."""
    return types.SimpleNamespace(
        snippet_len={"sc": 2.1, "mc": 4.2, "lc": 8.4}, audio_context=audio_context, fps=20, spec_bins=92,
        staff_height=160, sheet_context=200, emb_dim=32, mlp_hidden_size=512, use_att=use_att)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ucasr", required=True, help="a checkout of github.com/luisfvc/ucasr")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory holding msmd/small")
    parser.add_argument("--variants", default="SC,LC+AT")
    parser.add_argument("--rounds", type=int, default=3, help="alternating timed rounds per side")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()

    VGGModel, triplet_loss = load_ucasr(args.ucasr)
    import keras
    import numpy as np
    import torch

    import keras_asr
    from keras_asr.data import PairPool
    from keras_asr.geometry import CONTEXTS

    torch.set_num_threads(os.cpu_count())
    pool = PairPool.from_tfds("train", name="msmd/small", data_dir=args.data_dir)
    rng = np.random.default_rng(0)
    rows = []
    for variant in args.variants.split(","):
        context, attention = VARIANTS[variant]
        frames = CONTEXTS[context]
        batches = []
        for _ in range(args.steps + 1):
            idx = rng.integers(0, len(pool), args.batch_size)
            batches.append(pool.batch(idx, frames, augment=pool.augmentation(args.batch_size, rng)))

        torch.manual_seed(0)
        theirs = VGGModel(ucasr_args(context.lower(), attention))  # ucasr names contexts "sc", "mc", "lc"
        theirs.train()
        optimizer = torch.optim.Adam(theirs.parameters(), lr=0.0004, weight_decay=1e-5)
        torch_batches = [(torch.from_numpy(b["sheet"][:, None]), torch.from_numpy(b["spectrogram"][:, None]))
                         for b in batches]

        def ucasr_step(x, y):
            optimizer.zero_grad()
            x_emb, y_emb = theirs(x, y)
            loss = triplet_loss(x_emb, y_emb, margin=0.6)
            loss.backward()
            optimizer.step()
            return loss.item()

        ours = keras_asr.compile_model(keras_asr.build_model(context=context, attention=attention))

        def ours_step(batch):
            return float(np.asarray(ours.train_on_batch(batch)))

        ucasr_step(*torch_batches[0])  # warm-up of each side
        ours_step(batches[0])
        timings = {"ucasr": [], "keras_asr": []}
        losses = {"ucasr": [], "keras_asr": []}
        for _ in range(args.rounds):
            start = time.perf_counter()
            losses["ucasr"] += [ucasr_step(*b) for b in torch_batches[1:]]
            timings["ucasr"].append(args.batch_size * args.steps / (time.perf_counter() - start))
            start = time.perf_counter()
            losses["keras_asr"] += [ours_step(b) for b in batches[1:]]
            timings["keras_asr"].append(args.batch_size * args.steps / (time.perf_counter() - start))
        row = {"variant": variant, "ucasr_pairs_per_s": max(timings["ucasr"]),
               "keras_asr_pairs_per_s": max(timings["keras_asr"]), "rounds": timings,
               "finite_losses": bool(np.all(np.isfinite(losses["ucasr"] + losses["keras_asr"]))),
               "load_average_1min": os.getloadavg()[0]}
        row["ratio"] = row["keras_asr_pairs_per_s"] / row["ucasr_pairs_per_s"]
        rows.append(row)
        print(f"{variant:<6} ucasr {row['ucasr_pairs_per_s']:6.1f} pairs/s, keras-asr ({keras.backend.backend()}) "
              f"{row['keras_asr_pairs_per_s']:6.1f} pairs/s: {row['ratio']:.2f}x "
              f"(load {row['load_average_1min']:.1f})", flush=True)
        os.makedirs(RESULTS, exist_ok=True)
        with open(os.path.join(RESULTS, "ucasr_side_by_side.json"), "w") as f:
            json.dump({"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                       "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                       "keras_backend": keras.backend.backend(), "torch": torch.__version__,
                       "torch_threads": torch.get_num_threads(), "batch_size": args.batch_size,
                       "steps": args.steps, "results": rows}, f, indent=2)


if __name__ == "__main__":
    main()
