"""MSMD as TensorFlow Datasets: the `msmd` builder, the MSMD layout reader/writer, and the offline corpus.

`tfds build msmd --imports tfds_msmd` imports this package with TFDS already loaded; the builder is then
registered here. Other imports (the layout, the corpus) stay free of TFDS.
"""

import sys

if "tensorflow_datasets" in sys.modules:
    from tfds_msmd.msmd import msmd_dataset_builder  # noqa: F401  (registers "msmd")
