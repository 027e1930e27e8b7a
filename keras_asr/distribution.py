"""Data-parallel training over every accelerator of the machine (JAX backend).

Under the JAX backend, `keras.distribution.DataParallel` compiles one program for the whole global batch and
lets XLA split it over the devices: every mean over the batch axis, the CCA layer's covariances included, is
taken over the global batch (XLA inserts the cross-device reductions). The per-batch CCA therefore sees the
same 100 pairs on one device or eight, and a data-parallel step computes what a one-device step computes.
`tf.distribute.MirroredStrategy` would instead run the model once per replica on a slice of the batch, so
each replica's CCA would fit its own few pairs; the TensorFlow and PyTorch backends therefore train on one
device.

Example:
```python
# KERAS_BACKEND=jax, on a machine with 4 GPUs
distribution = keras_asr.distribution.data_parallel(batch_size=100)   # DataParallel over 4 devices
model = keras_asr.build_model("LC", attention=True)                   # variables replicated on every device
```
"""

import keras


def data_parallel(batch_size, devices=None):
    """Sets (and returns) a `keras.distribution.DataParallel` over all devices, if there is more than one.

    Call it before building the model. It does nothing (and returns None) on one device or off JAX.

    Args:
        batch_size: the global batch; it must split evenly over the devices.
        devices: None (all of JAX's devices), or a list of device strings such as `["cpu:0", "cpu:1"]`.

    Returns:
        The distribution that was set, or None.
    """
    if keras.backend.backend() != "jax":
        return None
    devices = devices or keras.distribution.list_devices()
    if len(devices) < 2:
        return None
    if batch_size % len(devices):
        raise ValueError(
            f"A batch of {batch_size} pairs does not split evenly over {len(devices)} devices; use a batch "
            f"size that is a multiple of {len(devices)} (the CCA still sees the whole batch)."
        )
    distribution = keras.distribution.DataParallel(devices=devices)
    keras.distribution.set_distribution(distribution)
    return distribution
