"""keras-asr: tempo-invariant audio-sheet music retrieval in Keras 3.

The data flow, by module: `audio` (audio -> spectrogram) and `sheet` (page -> unrolled strip -> snippet),
`data` (excerpt/snippet pairs), `models` (the two encoders), `layers.cca` (the shared space), `losses`,
`index` and `retrieval` (index -> ranked answer).
"""

__version__ = "0.1.0"
