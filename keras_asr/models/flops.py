"""Training FLOPs of a retrieval model, counted from its layer shapes.

Only the multiply-adds of convolutions and dense layers are counted (2 FLOPs each): they are the work a GEMM
peak measures, and everything else (BatchNorm, ELU, pooling, the 32-d CCA) is a few percent of it. A
training step costs, per layer, the forward product, the weight gradient (the same size again) and the input
gradient (again the same) - except that no input gradient is needed for a layer fed only by the model's
inputs, such as the first convolution of the sheet trunk.

Example:
```python
model = keras_asr.build_model(context="LC", attention=True)
keras_asr.models.flops.training_flops(model) / 1e9  # GFLOP per training pair, forward + backward
```
"""

import keras


def _has_trainable_ancestor(layer, seen):
    """Whether any tensor flowing into `layer` depends on a trainable weight."""
    if layer.name in seen:
        return seen[layer.name]
    seen[layer.name] = False
    found = False
    for node in layer._inbound_nodes:
        for tensor in node.input_tensors:
            parent = tensor._keras_history.operation
            if parent.trainable_weights or _has_trainable_ancestor(parent, seen):
                found = True
    seen[layer.name] = found
    return found


def _product_layers(model):
    """Every Conv2D and Dense layer of `model`, nested models included."""
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _product_layers(layer)
        elif isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense)):
            yield layer


def forward_flops(layer):
    """FLOPs of one sample through a Conv2D (`2 * H_out * W_out * k_h * k_w * C_in * C_out`) or Dense layer."""
    return 2 * _size(layer.kernel.shape[:-1]) * _size(layer.output.shape[1:])


def _size(shape):
    total = 1
    for d in shape:
        total *= int(d)
    return total


def training_flops(model):
    """FLOPs per pair of one training step (forward and backward) of `model`'s convolutions and dense layers.

    Args:
        model: a built `RetrievalModel` (or any functional model).

    Returns:
        A dict with `"forward"` and `"training"` FLOPs per pair, and `"layers"`: per layer name, its forward
        FLOPs and whether its input gradient is needed.
    """
    forward, training, layers = 0, 0, {}
    for layer in _product_layers(model):
        f = forward_flops(layer)
        needs_input_grad = _has_trainable_ancestor(layer, {})
        forward += f
        training += f * (3 if needs_input_grad else 2)
        layers[layer.name] = (f, needs_input_grad)
    return {"forward": forward, "training": training, "layers": layers}
