"""Warm start: a new model begins from the weights a trained one has learnt, wherever they fit.

A long-context model with attention (BL2-LC+AT) costs about three times as much per epoch as BL2-SC on a CPU.
Most of what it has to learn, BL2-SC has learnt already: the whole sheet tower is the same network, and the
audio tower's convolutions see spectrogram frames whatever the context length. Only the audio tower's dense
head (its input is the flattened feature map, wider for a longer context) and the attention pathway are new.

`warm_start` copies every layer whose name and weight shapes agree, tower by tower, and leaves the rest as
initialised. The CCA statistics are copied only when both towers came over whole: otherwise the audio
features they describe have changed, and training re-estimates them from its first batches.

Example:

```python
model = keras_asr.build_model(context="LC", attention=True)
report = keras_asr.warm_start.warm_start(model, "pretrained/varied_bl2_sc.keras")
report.copied[:2], report.kept_fresh  # ['sheet_tower/sheet_block1a_conv', ...], ['audio_tower/audio_dense', ...]
```
"""

import dataclasses

from keras_asr.models.retrieval_model import RetrievalModel


@dataclasses.dataclass
class WarmStart:
    """What `warm_start` did.

    Attributes:
        copied: `tower/layer` names whose weights came from the source model.
        kept_fresh: `tower/layer` names with weights that stayed as initialised (absent from the source, or
            of other shapes).
        cca_copied: whether the CCA's moving statistics came over too.
    """

    copied: list
    kept_fresh: list
    cca_copied: bool

    def summary(self):
        fresh = ", ".join(self.kept_fresh) if self.kept_fresh else "none"
        return (f"warm start: {len(self.copied)} layers copied, CCA statistics "
                f"{'copied' if self.cca_copied else 're-estimated'}; left as initialised: {fresh}")


def _weighted_layers(tower):
    return {layer.name: layer for layer in tower.layers if layer.weights}


def warm_start(model, source):
    """Copies into `model` every tower layer of `source` with the same name and weight shapes.

    Args:
        model: the `RetrievalModel` to start from `source` (built, not yet trained).
        source: a trained `RetrievalModel`, or the path of its `.keras` file.

    Returns:
        A `WarmStart` report.

    Raises:
        ValueError: no layer fits (the towers are other networks), or `source` is not a retrieval model.
    """
    if isinstance(source, str):
        from keras_asr import saving

        source = saving.load_model(source)
    if not isinstance(source, RetrievalModel) or not isinstance(model, RetrievalModel):
        raise ValueError("warm_start copies between keras-asr RetrievalModels.")
    copied, fresh = [], []
    for tower_name in ("sheet_tower", "audio_tower"):
        target_layers = _weighted_layers(getattr(model, tower_name))
        source_layers = _weighted_layers(getattr(source, tower_name))
        for name, layer in target_layers.items():
            origin = source_layers.get(name)
            label = f"{tower_name}/{name}"
            if origin is not None and [tuple(w.shape) for w in origin.weights] == [
                    tuple(w.shape) for w in layer.weights]:
                # Variable by variable: the dtype policy (float32 or bfloat16 compute) may differ, the values
                # are float32 weights either way.
                for variable, value in zip(layer.weights, origin.get_weights()):
                    variable.assign(value)
                copied.append(label)
            else:
                fresh.append(label)
    if not copied:
        raise ValueError("No layer of the source model fits this one: its towers are other networks.")
    cca_copied = not fresh
    if cca_copied:
        model.cca.set_weights(source.cca.get_weights())
    return WarmStart(copied, fresh, cca_copied)
