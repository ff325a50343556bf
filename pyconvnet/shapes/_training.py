"""What a training step costs, layer by layer: the multiply-adds of the
backward pass and the tensors each layer keeps for it.

The rules are derived in :ref:`theory-training-costs`. A leaf's backward pass
computes the gradient of its input when that input requires a gradient (some
layer before it has trainable parameters; the network's input does not) and
the gradient of its parameters when they are trainable. What it keeps is
named by a key: ``("t", n)`` for the activation tensor ``n`` of the walk
(the input or output of a layer, shared with the layers that read it), and
``("own", n)`` for a tensor the layer makes for itself (argmax indices,
dropout masks), so that a tensor kept by
several layers is counted once.
"""
import math

from .._specs import ACTIVATIONS

__all__ = ["INDEX_BYTES", "MASK_BYTES", "OPTIMIZER_STATES", "VIEWS", "backward_macs",
           "check_optimizer", "output_is_input", "saved_tensors", "weight_macs"]

# activations whose backward needs their output (y' is a function of y)
_KEEP_OUTPUT = ("relu", "sigmoid", "tanh", "softmax", "log_softmax")
# activations PyTorch can apply in place
_INPLACE = ("relu", "relu6", "leaky_relu", "elu", "silu", "hardswish",
            "hardsigmoid")
# in place, these keep their output (their derivative is a function of it);
# the others keep a copy of their input, as PyTorch's in-place hardtanh_
# (ReLU6), silu_, hardswish_ and hardsigmoid_ do
_INPLACE_KEEP_OUTPUT = ("relu", "leaky_relu", "elu")
# layers whose output is a view of their input
VIEWS = ("flatten", "identity", "slice", "crop", "reshape")
_MATMUL = ("conv", "conv_transpose", "linear", "rbf")
INDEX_BYTES = 8    # int64 argmax indices, as PyTorch stores them
MASK_BYTES = 1     # a bool dropout mask, as PyTorch stores it


def weight_macs(layer, in_shape, out_shape, params):
    """Multiply-adds of a layer's weights (no bias), per sample."""
    kind, cfg = layer.kind, layer.config
    bias = out_shape[0] if kind in ("conv", "conv_transpose") and cfg["bias"] \
        else out_shape[-1] if kind == "linear" and cfg["bias"] else 0
    weights = params - bias
    if kind == "conv":
        return weights * math.prod(out_shape[1:])
    if kind == "conv_transpose":
        return weights * math.prod(in_shape[1:])
    if kind in ("linear", "rbf"):
        return weights * (math.prod(in_shape) // in_shape[-1])
    return 0


def backward_macs(layer, in_shape, out_shape, params, trainable, macs, grad_in,
                  full):
    """(input-gradient MACs, weight-gradient MACs) of a leaf, per sample.

    For the products of weights and inputs (convolutions, transposed
    convolutions, linear and RBF layers) each gradient costs what the forward
    product costs: every forward multiply-add ``y += w x`` has one partner
    ``dx += w dy`` and one ``dw += x dy``. Under the ``"full"`` convention
    the other layers' input gradients cost what their forward pass costs,
    a bias gradient one add per output element and batch norm's scale and
    shift two per element.
    """
    kind, cfg = layer.kind, layer.config
    numel_out = math.prod(out_shape)
    if kind in _MATMUL:
        w = weight_macs(layer, in_shape, out_shape, params)
        gi = w if grad_in else 0
        gw = 0
        if trainable:
            gw = w
            if full and cfg.get("bias"):
                gw += numel_out
        return gi, gw
    if not full:
        return 0, 0
    gi = macs if grad_in else 0
    gw = 0
    if trainable and params:
        if kind in ("batch_norm", "group_norm", "instance_norm", "layer_norm"):
            gw = 2 * numel_out
        elif kind == "subsampling":
            gw = 2 * numel_out
    return gi, gw


def saved_tensors(layer, in_shape, out_shape, grad_in, trainable, inplace):
    """What a leaf keeps for its backward pass.

    Returns a list of ``(what, numel, bytes_per_element)`` where ``what``
    is ``"input"``, ``"output"`` or ``"own"``; ``bytes_per_element`` None
    means the summary's dtype. Nothing is kept when the layer computes no
    gradient at all.
    """
    kind, cfg = layer.kind, layer.config
    if not grad_in and not trainable:
        return []
    n_in = math.prod(in_shape)
    n_out = math.prod(out_shape)
    if kind in ("conv", "conv_transpose", "linear", "subsampling"):
        # the weight gradient correlates the input with the output gradient;
        # the input gradient needs only the weights
        return [("input", n_in, None)] if trainable else []
    if kind == "rbf":
        return [("input", n_in, None)]    # (x - w) enters both gradients
    if kind == "batch_norm":
        # the normalised input, kept as the input and, per channel, the mean
        # and 1/std it is recomputed from (as PyTorch does): the input may be
        # a tensor that another layer keeps too
        return [("input", n_in, None), ("stats", 2 * in_shape[0], None)]
    if kind in ("group_norm", "instance_norm", "layer_norm"):
        # the input and, per sample, the mean and 1/std of each group
        # (channel, position) the statistics run over
        groups = cfg["num_groups"] if kind == "group_norm" else in_shape[0] \
            if kind == "instance_norm" else math.prod(in_shape[1:]) \
            if cfg["normalized_shape"] is None else \
            n_in // math.prod(cfg["normalized_shape"] if isinstance(
                cfg["normalized_shape"], tuple) else (cfg["normalized_shape"],))
        kept = [("input", n_in, None), ("own", 2 * groups, None)]
        if kind == "instance_norm" and cfg["affine"]:
            # PyTorch normalises the instances as one batch of N C channels,
            # with the scale repeated for every sample
            kept.append(("own", in_shape[0], None))
        return kept
    if kind == "lrn":
        return [("input", n_in, None), ("own", n_in, None)]
    if kind in ("max_pool", "adaptive_max_pool"):
        return [("own", n_out, INDEX_BYTES)]
    if kind == "dropout":
        return [("own", n_in, MASK_BYTES)] if cfg["p"] > 0 else []
    if kind in ACTIVATIONS:
        if kind in _KEEP_OUTPUT or (inplace and kind in _INPLACE_KEEP_OUTPUT):
            return [("output", n_out, None)]
        if inplace and kind in _INPLACE:
            return [("own", n_in, None)]
        return [("input", n_in, None)]
    # pooling by averaging, flatten, identity, padding, crops, slices and
    # resizing: the shape is all they need
    return []


def output_is_input(layer, inplace):
    """True when a leaf's output shares its input's storage."""
    return layer.kind in VIEWS or (inplace and layer.kind in _INPLACE)


OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}


def check_optimizer(optimizer):
    if not isinstance(optimizer, str) or optimizer.lower() not in OPTIMIZER_STATES:
        raise ValueError(f"optimizer must be one of "
                         f"{', '.join(OPTIMIZER_STATES)}, got {optimizer!r}")
    return optimizer.lower()
