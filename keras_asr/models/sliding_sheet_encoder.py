"""A trained sheet encoder run as one fully convolutional pass over a strip, for indexing.

Snippets an index places every few pixels overlap almost entirely (at 16 px, 92 % of a 200 px window), so
embedding them one by one computes the same convolutions many times. The paper's sheet encoder is a conv trunk
with four 2 x 2 poolings and a head over the trunk's whole 5 x 6 output, so on a wider input the trunk's output
at column j is the trunk of the window starting 16 j columns (of the halved strip) in, and the head becomes a
5 x 6 convolution (BL2: the dense layer's kernel reshaped; BL1: a 5 x 6 average). One pass over a strip then
embeds a window every 32 strip columns; windows in between need passes over the strip shifted by their residue
(`windows.sliding_tiles` cuts the tiles).

This is close to, not exactly, the per-snippet embedding: a convolution with "same" padding sees zeros past a
snippet's edges but the neighbouring music in a strip, so the last 30 columns of each side differ (measured on
the varied corpus' test pieces with `varied_bl2_sc.keras`: cosine 0.977 on average to the per-snippet embedding,
every snippet still its own nearest neighbour). How that changes retrieval is measured by the identification
evaluation (README).

Example:

```python
model = keras_asr.saving.load_model("pretrained/varied_bl2_sc.keras")
sliding = SlidingSheetEncoder(model)
embeddings = sliding(score.strip, sheet.snippet_centres(score.width, 16))  # (n, 32) unit embeddings
```
"""

import math

import keras
import numpy as np

from keras_asr import windows
from keras_asr.geometry import SNIPPET_WINDOW
from keras_asr.models.encoders import SheetEncoder


class SlidingSheetEncoder:
    """The sheet embedding (tower -> CCA -> L2) of a trained `RetrievalModel` over whole strips.

    Args:
        model: a `RetrievalModel` whose sheet tower is a `SheetEncoder` (BL2 or BL1; `supports` says which
            the application uses it for).
        outputs_per_tile: windows embedded per tile (bounds memory; the result does not depend on it).
        batch_size: tiles per forward pass.

    Attributes:
        stride: strip columns between the windows of one pass (32 for the paper's encoder).
        margin: strip columns of context a tile carries each side, a multiple of `stride` covering the
            trunk's reach beyond a window.
    """

    def __init__(self, model, outputs_per_tile=56, batch_size=8):
        if not isinstance(getattr(model, "sheet_tower", None), SheetEncoder):
            raise ValueError("SlidingSheetEncoder needs a RetrievalModel whose sheet tower is a SheetEncoder.")
        tower = model.sheet_tower
        halved = keras.Input(shape=(tower.input_shape[1], None, 1), name="halved_strip")
        x, scale, reach = halved, 1, 0
        for layer in tower.layers[1:]:
            if isinstance(layer, keras.layers.Flatten):
                grid = layer.input.shape[1:]  # the feature map the dense head reads
                continue
            if isinstance(layer, keras.layers.Reshape):
                continue
            if isinstance(layer, keras.layers.Conv2D):
                reach += (layer.kernel_size[1] // 2) * scale
            if isinstance(layer, keras.layers.MaxPooling2D):
                scale *= layer.strides[1]
            if isinstance(layer, keras.layers.Dense):
                kernel, bias = layer.get_weights()
                head = keras.layers.Conv2D(layer.units, grid[:2], dtype=layer.dtype_policy, name="sliding_head")
                x = head(x)
                head.set_weights([kernel.reshape(*grid, layer.units), bias])
            elif isinstance(layer, keras.layers.GlobalAveragePooling2D):
                grid = layer.input.shape[1:3]
                x = keras.layers.AveragePooling2D(grid, strides=1, dtype=layer.dtype_policy)(x)
            else:
                x = layer(x)
        features = x[:, 0]  # the head spans the trunk's whole height: one row
        embeddings = model.sheet_normalize(model.cca(features, view=0))
        self.model = keras.Model(halved, embeddings, name="sliding_sheet_encoder")
        self.stride = 2 * scale  # strip columns: the encoder sees the strip halved
        self.margin = self.stride * math.ceil(2 * reach / self.stride)
        self.outputs_per_tile = outputs_per_tile
        self.batch_size = batch_size

    @staticmethod
    def supports(model):
        """Whether indexing should embed `model`'s snippets in passes over the strip: the paper's BL2 sheet
        encoder (dense head). BL1's global average weighs a window's border columns, where the pass differs,
        as much as its centre (cosine 0.948 to the per-snippet embeddings with the converted MSMD model, and
        lower confidences), so BL1 models and other towers embed snippet by snippet."""
        tower = getattr(model, "sheet_tower", None)
        return isinstance(tower, SheetEncoder) and tower.head == "dense"

    def cost(self, x):
        """Work of embedding the snippets at `x`, in units of one snippet through the per-snippet encoder."""
        tiles = sum(count for *_, count in windows.sliding_passes(x, self.stride, self.outputs_per_tile))
        span = windows.sliding_tile_span(self.stride, self.margin, self.outputs_per_tile)
        return tiles * span / SNIPPET_WINDOW[1]

    def __call__(self, strip, x):
        """(k,) snippet centres of a strip -> (k, 32) unit embeddings, in the order of `x`."""
        tiles, slots = windows.sliding_tiles(strip, x, self.stride, self.margin, self.outputs_per_tile)
        if not len(tiles):
            return np.zeros((0, self.model.output_shape[-1]), np.float32)
        skip = self.margin // self.stride  # outputs inside the left margin
        out = []
        for first in range(0, len(tiles), self.batch_size):
            batch = tiles[first:first + self.batch_size, :, :, None]
            out.append(np.asarray(self.model.predict_on_batch(batch))[:, skip:skip + self.outputs_per_tile])
        return np.concatenate(out).reshape(-1, out[0].shape[-1])[slots]
