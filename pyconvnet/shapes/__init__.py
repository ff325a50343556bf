"""Output shapes, parameters, MACs, memory and receptive fields from layer specs.

Everything here is arithmetic on layer descriptions: no framework, no tensors
and no forward pass. The single-layer calculators answer the questions the
lecture notes on CNNs ask (how large is the output of this convolution, how
many weights does it have, how much does a 1x1 bottleneck save), and
:func:`summary` applies the same arithmetic to whole networks, either one of
the built-in architectures of :mod:`pyconvnet.architectures` or a spec of your
own.

Conventions
-----------
Shapes exclude the batch dimension and put channels first: ``(C, H, W)`` for
images, ``(C, L)`` for sequences, ``(C, D, H, W)`` for volumes and
``(features,)`` after flattening.

A MAC is one multiply-accumulate ``acc += w * x``; FLOPs are always
``2 * MACs`` (one multiply and one add). Two conventions decide which layers
are counted:

``"torchvision"`` (the default)
    Convolutions (plain and transposed), linear layers and LeNet's RBF units,
    one MAC per weight use, bias additions excluded; normalisation, pooling,
    activations, residual additions and concatenations count zero. This is
    what torchvision publishes as "GFLOPS" for its pretrained models (the
    column holds multiply-adds despite its name): with it every built-in
    ImageNet model lands within 1% of the published figure, most within
    0.1% (AlexNet's 0.714 G is printed as 0.71). It is also fvcore's "flops"
    (one per multiply-add) and half of what
    ``torch.utils.flop_counter.FlopCounterMode`` reports.
``"full"``
    Adds one MAC per output element for bias additions, batch normalisation,
    activations and residual additions, one per window element for pooling,
    and one per input element for adaptive pooling. This overshoots
    torchvision's figures by up to 5% (MobileNet v2), which is how the
    default was settled, and is closer to tools that count every layer, such
    as ptflops.

Receptive fields follow the recurrence, per spatial dimension and starting
from ``r = 1, j = 1, start = 0`` on the input::

    k_eff = d * (k - 1) + 1
    r_out = r_in + (k_eff - 1) * j_in
    start_out = start_in + ((k_eff - 1) / 2 - p_left) * j_in
    j_out = j_in * s

``r`` is the size of the receptive field in input pixels, ``j`` (the jump) is
the distance in input pixels between neighbouring output units and ``start``
is the input coordinate of the centre of the first output unit's field.

The package is split by topic: output sizes (``_sizes``), parameter and
operation counts (``_costs``), design comparisons (``_compare``), the walk
through a network (``_walker``), whole-network summaries (``_summary``) and
their output formats (``_formats``), network files (``_files``, and
``_onnx`` for ONNX models), receptive fields (``_receptive``), the
backward pass's costs (``_training``) and the roofline (``_roofline``).
The layer specifications are defined in :mod:`pyconvnet._specs`, outside the
package, so that :mod:`pyconvnet.architectures` can build its networks from
them while :func:`summary` reads those networks. The window arithmetic itself
is :mod:`pyconvnet._geometry`'s. The submodules are private: import every
name from ``pyconvnet.shapes``.
"""
from .._geometry import InputTooSmallError
from .._specs import (ACTIVATIONS, Layer, activation, channel_shuffle, reshape, adaptive_avg_pool,
                      adaptive_max_pool, add, as_layer, avg_pool, batch_norm, concat, conv,
                      conv_transpose, crop, dense_block, dropout, flatten, global_avg_pool,
                      graph, group_norm, identity, instance_norm, layer_norm, linear, lrn,
                      max_pool, mul, node, pad, pixel_shuffle, pixel_unshuffle, rbf, relu,
                      residual, sequential, slice_channels, split, squeeze_excitation,
                      subsampling, upsample)
from ._compare import (Comparison, compare_bottleneck, compare_depthwise_separable,
                       compare_grouped, compare_stacked)
from ._costs import (activation_memory, conv_flops, conv_macs, conv_params, dtype_size,
                     linear_macs, linear_params, parse_shape)
from ._files import load_network, save_network
from ._formats import Summary
from ._receptive import RFStep, ReceptiveField, receptive_field
from ._roofline import Machine, measure_machine
from ._sizes import (ShapeExplanation, conv_output_size, conv_transpose_output_size,
                     pool_output_size, same_padding)
from ._summary import CONVENTIONS, PRESETS, summary
from ._walker import LayerRow

__all__ = [
    "Comparison",
    "InputTooSmallError",
    "Layer",
    "LayerRow",
    "Machine",
    "RFStep",
    "ReceptiveField",
    "ShapeExplanation",
    "Summary",
    "activation",
    "activation_memory",
    "adaptive_avg_pool",
    "adaptive_max_pool",
    "add",
    "as_layer",
    "avg_pool",
    "batch_norm",
    "channel_shuffle",
    "compare_bottleneck",
    "compare_depthwise_separable",
    "compare_grouped",
    "compare_stacked",
    "concat",
    "conv",
    "conv_flops",
    "conv_macs",
    "conv_output_size",
    "conv_params",
    "conv_transpose",
    "conv_transpose_output_size",
    "crop",
    "dense_block",
    "dropout",
    "dtype_size",
    "flatten",
    "global_avg_pool",
    "graph",
    "group_norm",
    "identity",
    "instance_norm",
    "layer_norm",
    "linear",
    "linear_macs",
    "linear_params",
    "load_network",
    "lrn",
    "max_pool",
    "measure_machine",
    "mul",
    "node",
    "pad",
    "parse_shape",
    "pixel_shuffle",
    "pixel_unshuffle",
    "pool_output_size",
    "rbf",
    "receptive_field",
    "relu",
    "reshape",
    "residual",
    "same_padding",
    "save_network",
    "sequential",
    "slice_channels",
    "split",
    "squeeze_excitation",
    "subsampling",
    "summary",
    "upsample",
]
