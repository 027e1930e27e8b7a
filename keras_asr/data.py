"""Audio-sheet pairs for training and evaluation, as `tf.data` or plain NumPy.

A pair is an audio excerpt `spec[:, o - C//2 : o - C//2 + C]` around an onset frame `o` (zeros = silence past
the spectrogram's ends) and the sheet snippet around the notehead played at `o`: a 160 x 200 window of the
unrolled score, vertically centred on the strip and horizontally on the notehead, padded white past the strip,
halved to 80 x 100 by 2x2 block means and scaled to [0, 1] with white = 1.

Training draws pairs uniformly at random with MSMD's augmentation (sheet shifted vertically by up to 5 px and
scaled by 0.95-1.05 about the window centre, onset jittered by up to one frame), and optionally a tempo
augmentation (`PairPool.tempo_augment`: each excerpt as if played faster or slower, a factor drawn
log-uniformly from a range, so that models see tempi beyond the renders'). Evaluation uses a fixed set:
the pool in piece -> performance -> onset order, `n` pairs at indices `linspace(0, N - 1, n).astype(int)`.

The same sampling is implemented twice: in TensorFlow ops for `tf.data` (usable by `model.fit` on every Keras
backend), and in NumPy (`PairPool.batch`) for machines without TensorFlow. At scale 1 both reduce to exact
pixel crops.

Example:

```python
pool = keras_asr.data.PairPool.from_tfds("test", name="msmd/small")
test_ds = pool.dataset(context=42, training=False)   # {"spectrogram": (B, 92, 42), "sheet": (B, 80, 100)}
train_ds = keras_asr.data.PairPool.from_tfds("train", name="msmd/small").dataset(42, training=True)
```
"""

import re

import numpy as np

from keras_asr import sources
from keras_asr import windows
from keras_asr.geometry import NUM_BINS
from keras_asr.geometry import SNIPPET_SHAPE as SHEET_SHAPE  # what the sheet encoder sees: the window halved
from keras_asr.geometry import STRIP_HEIGHT

EVAL_PAIRS = 10_000
# MSMD's training augmentation (audio_sheet_retrieval exp_configs: system_translation, sheet_scaling,
# onset_translation).
MAX_SHIFT = 5
SCALE_RANGE = (0.95, 1.05)
MAX_JITTER = 1


def eval_indices(num_pairs, n=EVAL_PAIRS):
    """Indices of the fixed evaluation pairs: `linspace(0, N - 1, n).astype(int)`, or all pairs if N <= n."""
    if num_pairs <= n:
        return np.arange(num_pairs)
    return np.linspace(0, num_pairs - 1, n).astype(int)


# The one cutter (`keras_asr.windows`), under the names this module has always offered.
snippets = windows.snippets
excerpts = windows.excerpts


class PairPool:
    """Every (onset frame, notehead) pair of a set of performances, held in memory.

    Examples are sorted by (piece, performance) and pairs by onset frame, which fixes the evaluation order.
    Strips are stored once per piece however many performances share them.

    Args:
        examples: iterable of performance records (`keras_asr.sources`: TFDS examples or a corpus reader's
            records) with `piece`, `performance`, `strip` (200, W[, 1]) uint8, `spectrogram` (92, N),
            `onset_frames` (k,) and `notehead_x` (k,).
    """

    # Strength of `keras_asr.page_augment` on training snippets of `dataset` (0: off; 1: its full ranges).
    page_augment = 0.0
    # (slowest, fastest) tempo factor of training excerpts, drawn log-uniformly per pair (None: off).
    tempo_augment = None

    def __init__(self, examples):
        examples = [_as_dict(e) for e in examples]
        if not examples:
            raise ValueError("PairPool needs at least one example.")
        examples.sort(key=lambda e: (e["piece"], e["performance"]))
        strips, strip_index = [], {}
        specs, pair_example, pair_onset, pair_x = [], [], [], []
        self.example_piece, self.example_strip, self.example_performance = [], [], []
        for i, e in enumerate(examples):
            if e["piece"] not in strip_index:
                strip_index[e["piece"]] = len(strips)
                strips.append(np.asarray(e["strip"], np.uint8).reshape(STRIP_HEIGHT, -1))
            self.example_piece.append(e["piece"])
            self.example_performance.append(e["performance"])
            self.example_strip.append(strip_index[e["piece"]])
            specs.append(np.asarray(e["spectrogram"], np.float32))
            order = np.argsort(e["onset_frames"], kind="stable")
            pair_example.append(np.full(len(order), i))
            pair_onset.append(np.asarray(e["onset_frames"])[order])
            pair_x.append(np.asarray(e["notehead_x"], np.float32)[order])
        self.strips, self.specs = strips, specs
        self.example_strip = np.asarray(self.example_strip)
        self.pair_example = np.concatenate(pair_example).astype(np.int64)
        self.pair_onset = np.concatenate(pair_onset).astype(np.int64)
        self.pair_x = np.concatenate(pair_x).astype(np.float32)
        self._tf_tables = None

    @classmethod
    def from_tfds(cls, split, name="msmd", data_dir=None, performances=None, **kwargs):
        """Loads a split of a TFDS dataset of an installed data source (`keras_asr.sources`) into a pool.

        Args:
            split: "train", "valid", "test", or any TFDS split string.
            name: builder and config, e.g. "msmd/small", "msmd/full", "msmd/msmd_v1_1".
            data_dir: TFDS data directory.
            performances: None (all), or a regular expression: only the performances whose
                `piece/performance` name it matches (`re.search`) join the pool, e.g. `"-dry$"` (the varied corpus'
                dry renders).
            **kwargs: passed on to `tfds.load`.

        Raises:
            ValueError: `performances` matches none of the split's performances.
        """
        examples = sources.load_tfds(name, split, data_dir, **kwargs)
        if performances is not None:
            examples = list(filter_performances(examples, performances))
            if not examples:
                raise ValueError(f"No performance of {name} {split} matches {performances!r}.")
        return cls(examples)

    def __len__(self):
        return len(self.pair_onset)

    def eval_indices(self, n=EVAL_PAIRS):
        """The fixed evaluation set (see `eval_indices`)."""
        return eval_indices(len(self), n)

    # -- NumPy ----------------------------------------------------------------------------------------------

    def augmentation(self, num, rng):
        """Random (shift, scale, jitter) for `num` pairs from a `np.random.Generator`."""
        shift = rng.integers(-MAX_SHIFT, MAX_SHIFT + 1, num)
        scale = rng.uniform(*SCALE_RANGE, num)
        jitter = rng.integers(-MAX_JITTER, MAX_JITTER + 1, num)
        return shift, scale, jitter

    def tempo_factors(self, num, rng):
        """`num` tempo factors drawn log-uniformly from `tempo_augment` (None when it is off)."""
        if self.tempo_augment is None:
            return None
        slowest, fastest = self.tempo_augment
        return np.exp(rng.uniform(np.log(slowest), np.log(fastest), num))

    def batch(self, indices, context, augment=None, rate=None):
        """Pairs `indices` as NumPy arrays.

        Args:
            indices: (k,) pair indices.
            context: spectrogram frames C.
            augment: None, or (shift, scale, jitter) arrays of length k (see `augmentation`).
            rate: None, or (k,) tempo factors of the excerpts (see `windows.excerpts`).

        Returns:
            {"spectrogram": float32 (k, 92, C), "sheet": float32 (k, 80, 100)}.
        """
        indices = np.atleast_1d(indices)
        k = len(indices)
        shift, scale, jitter = augment if augment is not None else (np.zeros(k), np.ones(k), np.zeros(k, int))
        spec = np.empty((k, NUM_BINS, context), np.float32)
        sheet = np.empty((k,) + SHEET_SHAPE, np.float32)
        for j, i in enumerate(indices):
            e = self.pair_example[i]
            spec[j] = excerpts(self.specs[e], [self.pair_onset[i] + jitter[j]], context,
                               None if rate is None else [rate[j]])[0]
            sheet[j] = snippets(self.strips[self.example_strip[e]], [self.pair_x[i]], [shift[j]], [scale[j]])[0]
        return {"spectrogram": spec, "sheet": sheet}

    def batches(self, context, batch_size=100, training=False, n=EVAL_PAIRS, seed=None):
        """A NumPy batch generator: random augmented pairs forever (training) or the fixed evaluation set."""
        if not training:
            idx = self.eval_indices(n)
            for start in range(0, len(idx), batch_size):
                yield self.batch(idx[start:start + batch_size], context)
            return
        rng = np.random.default_rng(seed)
        while True:
            idx = rng.integers(0, len(self), batch_size)
            augment = self.augmentation(batch_size, rng)
            yield self.batch(idx, context, augment, self.tempo_factors(batch_size, rng))

    # -- tf.data --------------------------------------------------------------------------------------------

    def _tables(self):
        """All spectrograms and strips concatenated into flat tensors, with per-pair offsets and bounds."""
        import tensorflow as tf

        if self._tf_tables is None:
            # Eager tensors captured by the dataset functions: never graph constants (2 GB proto limit).
            with tf.init_scope():
                self._tf_tables = self._make_tables()
        return self._tf_tables

    def _make_tables(self):
        import tensorflow as tf

        spec_len = np.array([s.shape[1] for s in self.specs])
        spec_start = np.concatenate([[0], np.cumsum(spec_len)[:-1]])
        strip_len = np.array([s.shape[1] for s in self.strips])
        strip_start = np.concatenate([[0], np.cumsum(strip_len)[:-1]])
        e, s = self.pair_example, self.example_strip[self.pair_example]
        return dict(
            frames=tf.constant(np.concatenate(self.specs, axis=1).T),  # (total frames, 92)
            strips=tf.constant(np.concatenate(self.strips, axis=1).reshape(-1)),  # (STRIP_HEIGHT * total width,)
            total_width=int(strip_len.sum()),
            onset=tf.constant(self.pair_onset),
            spec_start=tf.constant(spec_start[e]),
            spec_len=tf.constant(spec_len[e]),
            x=tf.constant(self.pair_x),
            strip_start=tf.constant(strip_start[s]),
            strip_len=tf.constant(strip_len[s]),
        )

    def _tf_batch(self, indices, context, shift, scale, jitter, rate=None):
        import tensorflow as tf

        t = self._tables()
        # Excerpts: frames of the pair's own spectrogram, zeros outside it.
        n = tf.gather(t["spec_len"], indices)[:, None]
        first = tf.gather(t["spec_start"], indices)[:, None]

        def read_frames(frames):
            ok = (frames >= 0) & (frames < n)
            values = tf.gather(t["frames"], first + tf.clip_by_value(frames, 0, n - 1))  # (k, C, bins)
            return values * tf.cast(ok, tf.float32)[:, :, None]

        onsets = tf.gather(t["onset"], indices) + tf.cast(jitter, tf.int64)
        spec = windows.tf_excerpts(onsets, context, read_frames, rate)
        # Snippets: pixels of the pair's own strip, white outside it.
        width = tf.gather(t["strip_len"], indices)[:, None]
        start = tf.gather(t["strip_start"], indices)[:, None]

        def read_pixels(rr, cc):
            ok = ((rr >= 0) & (rr < STRIP_HEIGHT))[:, :, None] & ((cc >= 0) & (cc < width))[:, None, :]
            flat = (tf.clip_by_value(rr, 0, STRIP_HEIGHT - 1)[:, :, None] * t["total_width"]
                    + (start + tf.clip_by_value(cc, 0, width - 1))[:, None, :])
            return tf.where(ok, tf.cast(tf.gather(t["strips"], flat), tf.float32), 255.0)

        sheet = windows.tf_snippets(tf.gather(t["x"], indices), shift, scale, read_pixels)
        return {"spectrogram": spec, "sheet": sheet}

    def dataset(self, context, batch_size=100, training=False, n=EVAL_PAIRS, seed=None, threads=None):
        """A batched `tf.data.Dataset` of pairs, {"spectrogram": (B, 92, C), "sheet": (B, 80, 100)}.

        Args:
            context: spectrogram frames C (42, 84, 168, or any positive int).
            batch_size: pairs per batch (keep it well above 32: see the CCA layer).
            training: random augmented pairs forever (use `steps_per_epoch`), or else the fixed
                evaluation set once, in order.
            n: size of the evaluation set.
            seed: seed of the training stream (None: a different stream each time).
            threads: None (tf.data's autotuned pool, one thread per core), or the size of a private thread
                pool for the training stream. A batch takes milliseconds to cut, so on a few cores one thread
                keeps the model fed without taking cores from the train step.
        """
        import tensorflow as tf

        if training:
            num = len(self)

            def draw(r):
                # One random int64 per pair picks the pair; the batch's first two seed its augmentation.
                u = tf.random.stateless_uniform((batch_size, 3), r[:2])
                shift = tf.floor(u[:, 0] * (2 * MAX_SHIFT + 1)) - MAX_SHIFT
                scale = SCALE_RANGE[0] + u[:, 1] * (SCALE_RANGE[1] - SCALE_RANGE[0])
                jitter = tf.cast(tf.floor(u[:, 2] * (2 * MAX_JITTER + 1)), tf.int64) - MAX_JITTER
                rate = None
                if self.tempo_augment is not None:  # its own seed: the streams without it stay as they were
                    slowest, fastest = np.log(self.tempo_augment)
                    v = tf.random.stateless_uniform((batch_size,), r[2:4], slowest, fastest, tf.float64)
                    rate = tf.exp(v)
                batch = self._tf_batch(tf.math.floormod(r, num), context, shift, scale, jitter, rate)
                if self.page_augment:  # opt-in: degrade snippets as real pages are (keras_asr.page_augment)
                    from keras_asr import page_augment

                    batch = page_augment.augment_pairs(batch, r[-2:], self.page_augment)
                return batch

            ds = tf.data.Dataset.random(seed=seed).batch(batch_size, drop_remainder=True)
            if threads is None:
                return ds.map(draw, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)
            options = tf.data.Options()
            options.threading.private_threadpool_size = threads
            options.threading.max_intra_op_parallelism = 1
            options.autotune.enabled = False  # the autotuner's own work competes with the train step
            ds = ds.map(draw, num_parallel_calls=threads).prefetch(2)
            return ds.with_options(options)

        def fixed(i):
            zeros = tf.zeros_like(i, tf.float64)
            return self._tf_batch(i, context, zeros, zeros + 1, tf.zeros_like(i))

        ds = tf.data.Dataset.from_tensor_slices(self.eval_indices(n).astype(np.int64))
        ds = ds.batch(batch_size)
        return ds.map(fixed, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(tf.data.AUTOTUNE)


def filter_performances(examples, pattern):
    """The examples whose `piece/performance` name `pattern` (a regular expression) matches (`re.search`)."""
    compiled = re.compile(pattern)
    for example in examples:
        if compiled.search(f"{sources.field(example, 'piece')}/{sources.field(example, 'performance')}"):
            yield example


def _as_dict(example):
    return {k: sources.field(example, k) for k in ("piece", "performance", "strip", "spectrogram", "onset_frames",
                                                   "notehead_x")}
