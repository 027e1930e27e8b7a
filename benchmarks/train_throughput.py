"""Training throughput (pairs/s) of the paper's variants at batch 100, on the active Keras backend.

    python benchmarks/train_throughput.py                      # every backend, one subprocess each
    KERAS_BACKEND=jax python benchmarks/train_throughput.py --backend current

Inputs are real pairs from the committed fixture corpus. Each variant is compiled and warmed up with
`--warmup` steps before `--steps` timed steps of `model.train_on_batch`. Results are printed as a
markdown table and written to benchmarks/results/train_throughput_<backend>.json.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

VARIANTS = (("SC", False), ("LC", False), ("LC", True))
BACKENDS = ("tensorflow", "jax", "torch")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def measure(steps, warmup, batch_size):
    import keras

    import keras_asr
    from keras_asr.testing import real_pairs

    rows = []
    for context, attention in VARIANTS:
        model = keras_asr.compile_model(keras_asr.build_model(context=context, attention=attention))
        batch = real_pairs(batch_size, model.frames)
        for _ in range(warmup):
            model.train_on_batch(batch)
        start = time.perf_counter()
        for _ in range(steps):
            loss = model.train_on_batch(batch)
        seconds = time.perf_counter() - start
        name = f"BL2-{context}" + (" + AT" if attention else "")
        rows.append({"variant": name, "pairs_per_s": steps * batch_size / seconds, "loss": float(loss)})
        print(f"{keras.backend.backend():<10} {name:<10} {rows[-1]['pairs_per_s']:7.1f} pairs/s", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="all", help="'all' (one subprocess per backend) or 'current'")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    args = parser.parse_args()
    if args.backend == "current":
        import keras

        rows = measure(args.steps, args.warmup, args.batch_size)
        os.makedirs(RESULTS, exist_ok=True)
        record = {
            "backend": keras.backend.backend(),
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "load_average_1min": os.getloadavg()[0],
            "steps": args.steps,
            "batch_size": args.batch_size,
            "results": rows,
        }
        with open(os.path.join(RESULTS, f"train_throughput_{record['backend']}.json"), "w") as f:
            json.dump(record, f, indent=2)
        return
    for backend in BACKENDS:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, __file__, "--backend", "current", "--steps", str(args.steps)]
        cmd += ["--warmup", str(args.warmup), "--batch-size", str(args.batch_size)]
        subprocess.run(cmd, env=env, check=True)
    print("\n| variant | " + " | ".join(BACKENDS) + " |\n|---|---|---|---|")
    tables = {}
    for backend in BACKENDS:
        with open(os.path.join(RESULTS, f"train_throughput_{backend}.json")) as f:
            tables[backend] = {r["variant"]: r["pairs_per_s"] for r in json.load(f)["results"]}
    for variant in tables[BACKENDS[0]]:
        print(f"| {variant} | " + " | ".join(f"{tables[b][variant]:.1f}" for b in BACKENDS) + " |")


if __name__ == "__main__":
    main()
