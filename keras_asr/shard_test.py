import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_asr.data import PairPool
from keras_asr.shard import _png
from keras_asr.shard import read_shard
from keras_asr.shard import write_shard
from keras_asr.testing import fixture_root
from tfds_msmd.layout import read_piece


def fixture_pool():
    return PairPool([r for piece in sorted(glob.glob(fixture_root() + "/*/")) for r in read_piece(piece)])


@pytest.mark.single_backend
def test_shard_round_trip_and_size_bound(tmp_path):
    pool = fixture_pool()
    path = tmp_path / "train.npz"
    assert write_shard(pool, path) == len(pool.example_piece)
    assert os.path.getsize(path) < 64 * 2**20
    back = read_shard(path)
    assert len(back) == len(pool)
    np.testing.assert_array_equal(back.pair_onset, pool.pair_onset)
    for a, b in zip(back.strips, pool.strips):  # PNG is lossless
        np.testing.assert_array_equal(a, b)
    for a, b in zip(back.specs, pool.specs):  # uint8: at most half a step of max / 255
        assert np.abs(a - b).max() <= b.max() / 510 + 1e-6
    idx = pool.eval_indices(50)
    np.testing.assert_allclose(back.batch(idx, 42)["spectrogram"], pool.batch(idx, 42)["spectrogram"], atol=0.01)
    # A budget below the corpus keeps a prefix of whole performances.
    first = (_png(pool.strips[0]).size + 1.5 * pool.specs[0].size) / 2**20
    assert write_shard(pool, tmp_path / "one.npz", max_mib=first) == 1
    assert len(read_shard(tmp_path / "one.npz")) == np.sum(pool.pair_example == 0)


# Loads a shard and trains on it through the NumPy pipeline with TensorFlow made unimportable.
SCRIPT = """
import json, sys
sys.modules["tensorflow"] = None
import numpy as np
import keras_asr
from keras_asr.shard import _png
from keras_asr.shard import fit_stream, read_shard
pool = read_shard(sys.argv[1])
model = keras_asr.compile_model(keras_asr.build_model(context=16))
history = model.fit(fit_stream(pool, 16, seed=0), steps_per_epoch=2, epochs=1,
                    verbose=0)
print(json.dumps({"loss": history.history["loss"], "tf": "tensorflow" in sys.modules and
                  sys.modules["tensorflow"] is not None}))
"""


@pytest.mark.single_backend
@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_shard_trains_without_tensorflow(tmp_path, backend):
    path = tmp_path / "train.npz"
    write_shard(fixture_pool(), path)
    env = dict(os.environ, KERAS_BACKEND=backend)
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(path)], env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert not result["tf"] and np.all(np.isfinite(result["loss"]))
