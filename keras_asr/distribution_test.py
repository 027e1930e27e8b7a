import json
import os
import subprocess
import sys

import pytest

# Two virtual CPU devices; JAX reads the flag at import, hence a fresh interpreter.
SCRIPT = """
import json
import numpy as np
import keras_asr
from keras_asr.distribution import data_parallel
from keras_asr.testing import real_pairs

pairs = real_pairs(100, 16)
single = keras_asr.compile_model(keras_asr.build_model(context=16))
weights = single.get_weights()
single_loss = float(single.train_on_batch(pairs))
distribution = data_parallel(batch_size=100)
parallel = keras_asr.compile_model(keras_asr.build_model(context=16))
parallel.set_weights(weights)
parallel_loss = float(parallel.train_on_batch(pairs))
kernel = parallel.get_layer("audio_tower").get_layer("audio_block1a_conv").kernel
print(json.dumps({
    "devices": len(distribution.device_mesh.devices.flatten()),
    "kernel_devices": len(kernel.value.sharding.device_set),
    "losses": [single_loss, parallel_loss],
    "mean_y": [np.asarray(m.cca.mean_y).tolist() for m in (single, parallel)],
    "odd_batch": str(__import__("pytest").raises(ValueError, data_parallel, 99).value),
}))
"""


@pytest.mark.single_backend
def test_data_parallel_step_equals_the_one_device_step():
    env = dict(os.environ, KERAS_BACKEND="jax", XLA_FLAGS="--xla_force_host_platform_device_count=2",
               TF_CPP_MIN_LOG_LEVEL="3")
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["devices"] == 2 and result["kernel_devices"] == 2
    # The CCA of the global batch: the same loss and moving statistics as on one device (per-device CCAs
    # of 50 pairs would give another loss, or fail the layer's batch-size check).
    single, parallel = result["losses"]
    assert abs(single - parallel) < 1e-4 * max(1.0, abs(single))
    for a, b in zip(*result["mean_y"]):
        assert abs(a - b) < 1e-4
    assert "multiple of 2" in result["odd_batch"]
