"""The `msmd` TFDS builder (`tfds new` layout)."""

from tfds_msmd.msmd.msmd_dataset_builder import Builder
