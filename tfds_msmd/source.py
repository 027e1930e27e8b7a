"""MSMD as a keras-asr data source (entry point `keras_asr.sources: msmd`, see `keras_asr.sources`).

keras-asr reads data only through this object: the `msmd` TFDS builder, and corpus folders in the MSMD layout
(the real MSMD and the offline corpus) read directly by `tfds_msmd.layout`.
"""

import os

from tfds_msmd import layout


class MSMDSource:
    """The `msmd` TFDS builder and the MSMD-layout reader, as `keras_asr.sources` expects them."""

    corpus_hint = "an MSMD-layout corpus has its split file, " + " or ".join(layout.SPLIT_FILES)

    def register(self):
        from tfds_msmd.msmd import msmd_dataset_builder  # noqa: F401  (registers "msmd" with TFDS)

    def is_corpus(self, root):
        return layout.find_split_file(root) is not None

    def read_corpus(self, root, split=None):
        splits = layout.read_split(root)
        if split is not None and split not in splits:
            raise ValueError(f"Unknown split {split!r}: an MSMD-layout corpus has {', '.join(splits)}.")
        pieces = [p for k in ("train", "valid", "test") for p in splits[k]] if split is None else splits[split]
        for piece in pieces:
            yield from layout.read_piece(os.path.join(root, piece))


source = MSMDSource()
