"""The paper's evaluation: Table 2 on the fixed test set, Table 3 on the tempo renders, attention statistics.

Example:

```python
pool = keras_asr.data.PairPool.from_tfds("test", name="msmd/small")
results = keras_asr.evaluation.evaluate_model(model, pool)          # both directions
tempo = keras_asr.evaluation.evaluate_tempo(model, keras_asr.evaluation.tempo_pools("msmd/small"))
```
"""

import numpy as np

from keras_asr import metrics
from keras_asr.data import EVAL_PAIRS
from keras_asr.data import PairPool


def embed_pairs(model, pool, indices=None, batch_size=100, chunk=2000):
    """(sheet, audio) embeddings of pool pairs (the fixed evaluation set by default), inference CCA stats.

    Returns:
        Two float32 arrays (n, 32), unit norm, row i of each from the same pair.
    """
    indices = pool.eval_indices() if indices is None else np.asarray(indices)
    sheet, audio = [], []
    for start in range(0, len(indices), chunk):
        out = model.predict(pool.batch(indices[start:start + chunk], model.frames), batch_size=batch_size,
                            verbose=0)
        sheet.append(out["sheet_embedding"])
        audio.append(out["audio_embedding"])
    return np.concatenate(sheet), np.concatenate(audio)


def evaluate_model(model, pool, n=EVAL_PAIRS, batch_size=100):
    """Table 2 metrics of `model` on the first-`n` fixed evaluation pairs of `pool`, both directions."""
    sheet, audio = embed_pairs(model, pool, pool.eval_indices(n), batch_size)
    return metrics.evaluate_retrieval(sheet, audio)


def tempo_pools(name="msmd/small", split="test_tempo", data_dir=None):
    """{tempo ratio: PairPool} of a TFDS split with renders at several tempi (the paper's Table 3)."""
    import tensorflow_datasets as tfds

    import tfds_msmd  # noqa: F401  (registers the builder)

    by_ratio = {}
    for e in tfds.as_numpy(tfds.load(name, split=split, data_dir=data_dir)):
        by_ratio.setdefault(round(float(e["tempo_ratio"]), 2), []).append(e)
    return {r: PairPool(examples) for r, examples in sorted(by_ratio.items())}


def evaluate_tempo(model, pools, n=EVAL_PAIRS, batch_size=100):
    """{tempo ratio: Table 2 metrics}: each tempo's renders retrieve among themselves, as in Table 3."""
    return {r: evaluate_model(model, pool, n, batch_size) for r, pool in pools.items()}


def attention_entropy(weights):
    """Entropy (nats) of each row of attention weights (B, C); uniform attention gives log(C)."""
    w = np.clip(np.asarray(weights, np.float64), 1e-12, None)
    return -(w * np.log(w)).sum(axis=-1)


def onsets_in_excerpt(pool, indices, context):
    """Number of the pair's performance onsets inside each pair's excerpt window (the x-axis of Figure 4).

    The window of an excerpt around onset frame o is frames [o - C//2, o - C//2 + C).
    """
    indices = np.asarray(indices)
    counts = np.empty(len(indices), np.int64)
    for j, i in enumerate(indices):
        e = pool.pair_example[i]
        onsets = pool.pair_onset[pool.pair_example == e]  # sorted by onset within an example
        lo = pool.pair_onset[i] - context // 2
        counts[j] = np.searchsorted(onsets, lo + context) - np.searchsorted(onsets, lo)
    return counts


def attention_statistics(model, pool, indices=None, batch_size=100):
    """(entropy, onset count, weights) of the attention over the evaluation excerpts of `pool` (Figure 4)."""
    indices = pool.eval_indices() if indices is None else np.asarray(indices)
    spec = pool.batch(indices, model.frames)["spectrogram"]
    weights = np.asarray(model.audio_tower.attention_model.predict(spec, batch_size=batch_size, verbose=0))
    return attention_entropy(weights), onsets_in_excerpt(pool, indices, model.frames), weights
