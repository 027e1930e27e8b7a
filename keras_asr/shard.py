"""A compact training shard: a subset of a corpus in one small `.npz`, readable without TensorFlow.

Spectrograms are quantised to uint8 (one scale per performance: the error is at most 1/510 of its largest
value, far below the spectrogram's own noise) and score strips are stored once per piece as PNG bytes. A
shard of the small corpus's training split is a few MiB, so it travels to a GPU machine with the code, and
`read_shard` gives a `PairPool` whose NumPy pipeline (`PairPool.batches`) feeds `model.fit` under JAX or
PyTorch with no TensorFlow installed.

    python -m keras_asr.shard --dataset msmd/small --split train --out train.npz --max-mib 60

Example:
```python
pool = keras_asr.shard.read_shard("train.npz")                    # a PairPool, no TensorFlow needed
model.fit(keras_asr.shard.fit_stream(pool, context=42, seed=0), steps_per_epoch=100)
```
"""

import argparse
import io

import numpy as np

from keras_asr.data import PairPool

MAX_MIB = 60  # under the 64 MiB that a device machine carries, with room for the code


def _png(strip):
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.asarray(strip, np.uint8)).save(buffer, format="PNG", optimize=True)
    return np.frombuffer(buffer.getvalue(), np.uint8)


def _unpng(data):
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data.tobytes())), np.uint8)


def write_shard(pool, path, max_mib=MAX_MIB):
    """Writes the performances of `pool`, piece by piece in pool order, until the next would pass `max_mib`.

    Args:
        pool: a `PairPool`.
        path: the `.npz` file to write.
        max_mib: size bound of the shard in MiB (counted before compression, so the file is smaller).

    Returns:
        The number of performances written.
    """
    arrays, used, strips = {}, 0, {}
    kept = []
    for e, piece in enumerate(pool.example_piece):
        spec = pool.specs[e]
        new_strip = piece not in strips
        strip = _png(pool.strips[pool.example_strip[e]]) if new_strip else None
        size = spec.size + (strip.size if new_strip else 0)
        if used + size > max_mib * 2**20:
            break
        if new_strip:
            strips[piece] = len(strips)
            arrays[f"strip_{strips[piece]}"] = strip
        scale = max(float(spec.max()), 1e-12) / 255
        i = len(kept)
        arrays[f"spec_{i}"] = np.round(spec / scale).astype(np.uint8)
        pairs = pool.pair_example == e
        arrays[f"onsets_{i}"] = pool.pair_onset[pairs]
        arrays[f"x_{i}"] = pool.pair_x[pairs]
        kept.append((piece, pool.example_performance[e], scale, strips[piece]))
        used += size
    if not kept:
        raise ValueError(f"Not even one performance fits in {max_mib} MiB.")
    pieces, performances, scales, strip_ids = zip(*kept)
    np.savez_compressed(path, piece=np.array(pieces), performance=np.array(performances),
                        scale=np.array(scales, np.float64), strip_id=np.array(strip_ids), **arrays)
    return len(kept)


def read_shard(path):
    """The `PairPool` of a shard written by `write_shard` (NumPy and Pillow only)."""
    with np.load(path) as shard:
        strips = {}
        records = []
        for i, (piece, performance, scale, strip_id) in enumerate(
                zip(shard["piece"], shard["performance"], shard["scale"], shard["strip_id"])):
            if strip_id not in strips:
                strips[strip_id] = _unpng(shard[f"strip_{strip_id}"])
            records.append({
                "piece": str(piece), "performance": str(performance), "strip": strips[strip_id],
                "spectrogram": shard[f"spec_{i}"].astype(np.float32) * np.float32(scale),
                "onset_frames": shard[f"onsets_{i}"], "notehead_x": shard[f"x_{i}"],
            })
    return PairPool(records)


def fit_stream(pool, context, batch_size=100, seed=None):
    """Augmented training batches of `pool` from the NumPy pipeline, as `model.fit` takes a generator.

    `model.fit` wants a generator of tuples, `(inputs,)` here since the pairs need no targets.
    """
    for batch in pool.batches(context, batch_size=batch_size, training=True, seed=seed):
        yield (batch,)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="msmd/small", help="TFDS name of the corpus")
    parser.add_argument("--data-dir", default=None, help="TFDS data directory")
    parser.add_argument("--split", default="train")
    parser.add_argument("--out", required=True, help="the .npz to write")
    parser.add_argument("--max-mib", type=float, default=MAX_MIB)
    args = parser.parse_args(argv)
    pool = PairPool.from_tfds(args.split, name=args.dataset, data_dir=args.data_dir)
    kept = write_shard(pool, args.out, args.max_mib)
    print(f"{args.out}: {kept} of {len(pool.example_piece)} performances, {len(read_shard(args.out))} pairs")


if __name__ == "__main__":
    main()
