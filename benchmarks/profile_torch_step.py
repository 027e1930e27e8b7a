"""Where a training step's time goes under the PyTorch backend: the operators of one `train_on_batch`.

    python benchmarks/profile_torch_step.py --data-dir /tmp/speed_tfds --variant SC

Builds the model, trains 2 warm-up steps on one batch of real `msmd/small` pairs, then profiles one step with
`torch.profiler` and prints the operators by their own CPU time, with the share of convolutions (forward and
backward), of layout copies (`aten::copy_`: Keras keeps NHWC tensors, PyTorch convolves NCHW) and of the rest.
"""

import argparse
import os

os.environ["KERAS_BACKEND"] = "torch"

from train_speed import VARIANTS  # noqa: E402  (the benchmark's variant table; it imports no backend)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="TFDS data directory holding msmd/small")
    parser.add_argument("--variant", default="SC", choices=sorted(VARIANTS))
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rows", type=int, default=15)
    args = parser.parse_args()

    import numpy as np
    from torch.profiler import ProfilerActivity, profile

    import keras_asr
    from keras_asr.data import PairPool

    pool = PairPool.from_tfds("train", name="msmd/small", data_dir=args.data_dir)
    rng = np.random.default_rng(0)
    context, attention = VARIANTS[args.variant]
    model = keras_asr.compile_model(keras_asr.build_model(context=context, attention=attention))
    batch = pool.batch(rng.integers(0, len(pool), args.batch_size), model.frames,
                       augment=pool.augmentation(args.batch_size, rng))
    for _ in range(2):
        model.train_on_batch(batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        model.train_on_batch(batch)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events)
    conv = sum(e.self_cpu_time_total for e in events if "convolution" in e.key)
    copy = sum(e.self_cpu_time_total for e in events if e.key == "aten::copy_")
    print(events.table(sort_by="self_cpu_time_total", row_limit=args.rows))
    print(f"BL2-{args.variant}, batch {args.batch_size}: {total / 1e6:.2f} s of CPU time; convolutions "
          f"{conv / total:.0%}, layout copies {copy / total:.0%}, everything else {1 - (conv + copy) / total:.0%}")


if __name__ == "__main__":
    main()
