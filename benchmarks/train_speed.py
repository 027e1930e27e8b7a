"""Training speed against the machine's peak: GEMM FLOP/s, counted FLOPs per pair, fit and train-step pairs/s.

    python benchmarks/train_speed.py --data-dir /tmp/speed_tfds          # every backend, one subprocess each
    KERAS_BACKEND=jax python benchmarks/train_speed.py --backend current --data-dir /tmp/speed_tfds

Needs the small corpus: `tfds build msmd --imports tfds_msmd --config small --data_dir DIR`. In one process
per backend it measures:

- the GEMM peak: `keras.ops.matmul` of two 4096 x 4096 matrices in float32 and in bfloat16 (FLOP/s);
- per variant and precision, the training FLOPs per pair counted from the layer shapes
  (`keras_asr.models.flops`), then
  - `step`: pairs/s of `model.train_on_batch` on one batch of real corpus pairs (no input pipeline), and
  - `fit`: pairs/s of `model.fit` on `PairPool.dataset(training=True)` of the corpus's train split, the
    augmenting input pipeline included, timed after the warm-up steps;
- the ratio of the achieved FLOP/s to the float32 GEMM peak of the same run.

`--levers threads,xla,compile` adds rows for settings that were tried: under TensorFlow, `fit` with the input
pipeline on tf.data's autotuned pool (one thread per core) and on a private pool of one thread
(`PairPool.dataset(threads=)`), and the train step under XLA (`jit_compile=True`); under PyTorch, the train step
under `torch.compile` (`jit_compile=True`). JAX always compiles with XLA; its CPU flags (for example
`XLA_FLAGS=--xla_cpu_use_onednn=true`) are set in the environment and recorded with the results. The load
average is recorded beside every figure: on a shared machine, compare ratios from the same run. Results go to
benchmarks/results/train_speed_<backend>.json and a markdown table.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time

VARIANTS = {"SC": ("SC", False), "LC": ("LC", False), "LC+AT": ("LC", True)}
BACKENDS = ("tensorflow", "jax", "torch")
RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")


def gemm_flops(dtype, n=4096, repeats=2):
    """FLOP/s of the backend's matmul of two n x n matrices (best of `repeats`)."""
    import keras
    import numpy as np

    a = keras.ops.convert_to_tensor(np.random.default_rng(0).random((n, n), np.float32), dtype=dtype)
    b = keras.ops.convert_to_tensor(np.random.default_rng(1).random((n, n), np.float32), dtype=dtype)

    def product():  # reading one element back waits for the whole product (JAX dispatches asynchronously)
        keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.matmul(a, b)[0, 0], "float32"))

    product()  # warm-up (and JAX's dispatch compile)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        product()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best


class _FitTimer:
    """Times `model.fit` from the end of the warm-up batches to the end of training."""

    def __new__(cls, warmup):
        import keras

        class Timer(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                if batch == warmup - 1:
                    self.start = time.perf_counter()
                self.end = time.perf_counter()

        return Timer()


def _model(context, attention, precision, jit_compile="auto"):
    import keras
    import keras_asr

    if jit_compile is True and keras.backend.backend() == "torch":
        # torch.compile; with dynamic shapes inductor fails on the encoders' shape arithmetic
        # ("cannot determine truth value of Relational"), and the batch shape is fixed here anyway.
        import torch._dynamo

        torch._dynamo.config.automatic_dynamic_shapes = False
        torch._dynamo.config.assume_static_by_default = True
        # Every layer call is its own compiled frame, one per layer shape; past the default limit of 8
        # recompilations torch falls back to running them uncompiled.
        torch._dynamo.config.recompile_limit = 256
        torch._dynamo.config.accumulated_recompile_limit = 4096

    model = keras_asr.build_model(context=context, attention=attention, precision=precision)
    return keras_asr.compile_model(model, jit_compile=jit_compile)


def time_step(model, batch, steps, warmup):
    for _ in range(warmup):
        model.train_on_batch(batch)
    start = time.perf_counter()
    for _ in range(steps):
        loss = model.train_on_batch(batch)
    return len(batch["sheet"]) * steps / (time.perf_counter() - start), float(loss)


def time_fit(model, dataset, steps, warmup, batch_size):
    timer = _FitTimer(warmup)
    history = model.fit(dataset, steps_per_epoch=warmup + steps, epochs=1, verbose=0, callbacks=[timer])
    return batch_size * steps / (timer.end - timer.start), float(history.history["loss"][-1])


def measure(args, save):
    """Measures every figure on the current backend; `save(peak, rows)` runs after each one."""
    import keras
    import numpy as np

    from keras_asr.data import PairPool
    from keras_asr.models.flops import training_flops

    peak = {"float32": gemm_flops("float32"), "bfloat16": gemm_flops("bfloat16")}
    print(f"{keras.backend.backend()}: GEMM float32 {peak['float32'] / 1e9:.0f} GFLOP/s, "
          f"bfloat16 {peak['bfloat16'] / 1e9:.0f} GFLOP/s", flush=True)
    pool = PairPool.from_tfds("train", name="msmd/small", data_dir=args.data_dir)
    rows = []

    def record(variant, precision, mode, pairs_per_s, loss, flops):
        row = {"variant": variant, "precision": precision, "mode": mode, "pairs_per_s": pairs_per_s,
               "gflop_per_pair": flops / 1e9, "gflop_per_s": pairs_per_s * flops / 1e9,
               "of_fp32_gemm": pairs_per_s * flops / peak["float32"], "loss": loss,
               "load_average_1min": os.getloadavg()[0]}
        rows.append(row)
        print(f"{keras.backend.backend():<10} {variant:<6} {precision:<15} {mode:<14} {pairs_per_s:7.1f} pairs/s "
              f"{row['gflop_per_s']:6.0f} GFLOP/s = {row['of_fp32_gemm']:5.1%} of fp32 GEMM "
              f"(load {row['load_average_1min']:.1f})", flush=True)
        save(peak, rows)  # a run cut short still leaves its figures

    rng = np.random.default_rng(0)
    for variant in args.variants.split(","):
        context, attention = VARIANTS[variant]
        for precision in args.precisions.split(","):
            model = _model(context, attention, precision)
            flops = training_flops(model)["training"]
            idx = rng.integers(0, len(pool), args.batch_size)
            batch = pool.batch(idx, model.frames, augment=pool.augmentation(args.batch_size, rng))
            record(variant, precision, "step", *time_step(model, batch, args.steps, args.warmup), flops)
            dataset = pool.dataset(model.frames, batch_size=args.batch_size, training=True, seed=0)
            record(variant, precision, "fit", *time_fit(model, dataset, args.steps, args.warmup,
                                                        args.batch_size), flops)
            levers = args.levers.split(",") if args.levers else []
            if "threads" in levers and keras.backend.backend() == "tensorflow":
                # `fit` above runs the pipeline on tf.data's autotuned pool; here on one private thread.
                dataset = pool.dataset(model.frames, batch_size=args.batch_size, training=True, seed=0, threads=1)
                record(variant, precision, "fit, tf.data 1 thread",
                       *time_fit(model, dataset, args.steps, args.warmup, args.batch_size), flops)
            if "xla" in levers and keras.backend.backend() == "tensorflow":
                xla = _model(context, attention, precision, jit_compile=True)
                record(variant, precision, "step, XLA", *time_step(xla, batch, args.steps, args.warmup), flops)
            if "compile" in levers and keras.backend.backend() == "torch":
                compiled = _model(context, attention, precision, jit_compile=True)
                record(variant, precision, "step, torch.compile",
                       *time_step(compiled, batch, args.steps, args.warmup), flops)
    return peak, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", default="all", help="'all' (one subprocess per backend) or 'current'")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="with --backend all: which ones")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory holding msmd/small")
    parser.add_argument("--variants", default="SC,LC+AT", help="comma-separated: " + ",".join(VARIANTS))
    parser.add_argument("--precisions", default="float32,mixed_bfloat16")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per figure")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--levers", default="", help="comma-separated: threads, xla (TensorFlow), compile (PyTorch)")
    parser.add_argument("--suffix", default="", help="appended to the results' file name (e.g. _onednn)")
    args = parser.parse_args()
    if args.backend == "current":
        import keras

        def save(peak, rows):
            os.makedirs(RESULTS, exist_ok=True)
            record = {
                "backend": keras.backend.backend(),
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "gemm_gflop_per_s": {k: v / 1e9 for k, v in peak.items()},
                "xla_flags": os.environ.get("XLA_FLAGS", ""),
                "steps": args.steps, "warmup": args.warmup, "batch_size": args.batch_size,
                "results": rows,
            }
            with open(os.path.join(RESULTS, f"train_speed_{record['backend']}{args.suffix}.json"), "w") as f:
                json.dump(record, f, indent=2)

        measure(args, save)
        return
    backends = args.backends.split(",")
    for backend in backends:
        env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [sys.executable, __file__, "--backend", "current", "--variants", args.variants, "--precisions",
               args.precisions, "--steps", str(args.steps), "--warmup", str(args.warmup), "--batch-size",
               str(args.batch_size)] + (["--data-dir", args.data_dir] if args.data_dir else [])
        cmd += ["--levers", args.levers] if args.levers else []
        cmd += ["--suffix", args.suffix] if args.suffix else []
        subprocess.run(cmd, env=env, check=True)
    print("\n| backend | variant | precision | mode | pairs/s | GFLOP/pair | GFLOP/s | of fp32 GEMM | load |")
    print("|---|---|---|---|---:|---:|---:|---:|---:|")
    for backend in backends:
        with open(os.path.join(RESULTS, f"train_speed_{backend}{args.suffix}.json")) as f:
            record = json.load(f)
        for r in record["results"]:
            print(f"| {backend} | {r['variant']} | {r['precision']} | {r['mode']} | {r['pairs_per_s']:.1f} | "
                  f"{r['gflop_per_pair']:.2f} | {r['gflop_per_s']:.0f} | {r['of_fp32_gemm']:.0%} | "
                  f"{r['load_average_1min']:.1f} |")
        gemm = record["gemm_gflop_per_s"]
        print(f"| {backend} | GEMM 4096 | | | | | fp32 {gemm['float32']:.0f}, bf16 {gemm['bfloat16']:.0f} | | |")


if __name__ == "__main__":
    main()
