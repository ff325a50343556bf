"""Summaries of whole networks: shapes, parameters, MACs, receptive fields
and memory, layer by layer."""
import dataclasses
import os
from fractions import Fraction

from .. import architectures
from .._specs import Layer, as_layer
from .._validation import check_bool, check_int
from ._conventions import CONVENTIONS, PRESETS, count_rules
from ._costs import _dtype_name, dtype_size, parse_shape
from ._files import is_network_path, load_network
from ._formats import Summary, _fold, _shape_str
from ._ranks import check_input_rank
from ._roofline import Machine
from ._walker import _final_field, _Walker

__all__ = ["CONVENTIONS", "PRESETS", "summary"]



def _predicted(machine, row):
    """The row with its forward time on ``machine`` and what bounds it."""
    seconds, bound = machine.predict(2 * row.macs * row.batch_size, row.bytes_moved)
    return dataclasses.replace(row, predicted_time=seconds, bound=bound)


def _convention_name(convention, preset, count):
    name = convention if preset is None else preset
    if count:
        name += " (" + ", ".join(f"{k}={v}" for k, v in count.items()) + ")"
    return name

def _is_onnx_model(model):
    """An ``onnx.ModelProto`` (without importing onnx)."""
    cls = type(model)
    return cls.__name__ == "ModelProto" and cls.__module__.startswith("onnx")


def _is_architecture(name):
    try:
        architectures.canonical_name(name)
    except (TypeError, ValueError):
        return False
    return True


def _resolve(model):
    """(Layer, default input shape or None, display name) for any model form."""
    if is_network_path(model) and not _is_architecture(model):
        layer, shape = load_network(model)
        stem = os.path.splitext(os.path.basename(os.fspath(model)))[0]
        return layer, shape, layer.name or stem
    if _is_onnx_model(model):
        from ._onnx import onnx_to_layer
        layer, shape = onnx_to_layer(model, "the ONNX model")
        return layer, shape, model.graph.name or "model"
    if isinstance(model, str):
        name = architectures.canonical_name(model)
        return (architectures.get_architecture(name),
                architectures.default_input_shape(name), name)
    hook = getattr(model, "layer_specs", None)
    if callable(hook) and not isinstance(model, (Layer, list, tuple, dict)):
        return as_layer(hook()), None, type(model).__name__
    layer = as_layer(model)
    return layer, None, layer.name or "model"


def summary(model, input_shape=None, *, convention="torchvision",
            dtype="float32", batch_size=1, inplace=False, machine=None,
            preset=None, count=None, depth=None):
    """Shapes, parameters, MACs, receptive fields and memory of a network.

    Parameters
    ----------
    model : str, path-like, spec, onnx.ModelProto or object with ``layer_specs()``
        A built-in architecture name (see
        :func:`pyconvnet.architectures.list_architectures`), the path of a
        network file (``.json``, ``.toml`` or ``.onnx``, see
        :func:`load_network`), a spec as accepted by :func:`as_layer`, an
        ONNX model, or a model object whose ``layer_specs()`` method
        returns one.
    input_shape : tuple of int, str or None
        Shape of one input without the batch dimension, e.g.
        ``(3, 224, 224)`` or ``"3x224x224"``. None uses the architecture's
        default, the shape a network file carries, or an ONNX graph's
        static input shape.
    convention : {'torchvision', 'full'}
        Which operations count as MACs (see the module notes).
    dtype : str or dtype-like
        Element type for the memory columns.
    batch_size : int
        Multiplies the activation memory, the saved memory and the bytes
        moved (not the MACs, which are per sample).
    inplace : bool
        Apply the activations that can be in place (ReLU, ReLU6, leaky ReLU,
        ELU, SiLU, hard swish and hard sigmoid) in place, as
        ``nn.ReLU(inplace=True)`` does: their output shares its storage
        with their input. ReLU, leaky ReLU and ELU then keep their output
        for the backward pass (in place of their input, for the last two);
        the others keep a copy of their input, as PyTorch does.
    preset : {'torchvision', 'full', 'fvcore', 'ptflops'} or None
        Count as another tool counts, to reproduce its published figures
        (replaces ``convention``; see ``PRESETS`` and
        :ref:`theory-counting-conventions`). These count forward passes:
        the backward pass is counted as under ``"torchvision"``, except
        for ``"full"``.
    count : dict or None
        Switches that override the convention's or preset's, e.g. ``{"bias": True}``:
        ``bias``, ``batch_norm``, ``activations``, ``pooling``,
        ``adaptive_pooling``, ``residual`` and ``lrn`` (see ``PRESETS``).
    machine : Machine or None
        Peak rates from :func:`measure_machine` (or written by hand): each
        row then predicts its forward time and says whether it is compute-
        or memory-bound.
    depth : int or None
        Fold the rows deeper than ``depth`` name components into one row per
        block: with ``depth=1`` ResNet-50 has a row for ``layer1``, whose
        kind is the block's (``sequential``), with the sums of its rows'
        parameters, MACs and memory, the first row's input shape and the
        last row's output shape and receptive field. The totals do not
        change. None keeps every row.

    Returns
    -------
    Summary

    Raises
    ------
    ValueError
        For an unknown architecture (listing the known ones), an unknown
        convention, mismatched shapes, or an input too small for the network
        (naming the layer where the feature map vanishes).
    TypeError
        For specs that cannot be read.

    See Also
    --------
    receptive_field, pyconvnet.architectures

    Notes
    -----
    Derived in :ref:`theory-parameter-count` and :ref:`theory-training-costs`.

    Parameter counts include every learnable tensor (weights, biases,
    batch-norm scale and shift) and exclude buffers such as batch-norm
    running statistics, matching ``sum(p.numel() for p in
    model.parameters())`` in PyTorch. Under the default convention the MACs
    match torchvision's published GFLOPS for its classification models.

    Examples
    --------
    >>> s = summary("resnet50")
    >>> s.total_params
    25557032
    >>> round(s.total_macs / 1e9, 2)
    4.09
    >>> s = summary([conv(10, 5, padding=2)], "3x32x32")
    >>> s.output_shape, s.total_params
    ((10, 32, 32), 760)
    >>> summary("alexnet").receptive_field
    195

    The backward pass, and the memory of a training step with Adam at
    batch 32:

    >>> s = summary("resnet50", batch_size=32)
    >>> s.total_backward_macs
    8060354560
    >>> round(s.training_memory("adam") / 2**30, 2)
    2.94
    """
    count_rules(convention, count, preset)          # validates all three
    if depth is not None:
        check_int(depth, "depth", 1)
    layer, default, name = _resolve(model)
    if input_shape is None:
        if default is None:
            raise ValueError("input_shape is required for a spec (built-in "
                             "architectures and network files that carry one "
                             "have a default)")
        input_shape = default
    shape = parse_shape(input_shape)
    check_input_rank(layer, shape, name, default)
    itemsize = dtype_size(dtype)
    batch = check_int(batch_size, "batch_size", 1)
    check_bool(inplace, "inplace")
    walker = _Walker(convention, itemsize, batch, inplace=inplace, count=count,
                     preset=preset)
    rf0 = tuple((Fraction(1), Fraction(1), Fraction(0))
                for _ in shape[1:]) or None
    try:
        out = walker.run(layer, (shape, rf0), "")[0]
    except ValueError as exc:
        raise type(exc)(f"{name} on input {_shape_str(shape)}: {exc}") from None
    rows = tuple(walker.rows)
    receptive = _final_field(rows)[0]
    if machine is not None:
        if not isinstance(machine, Machine):
            raise TypeError(f"machine must be a Machine (see measure_machine), got "
                            f"{type(machine).__name__}")
        rows = tuple(_predicted(machine, r) for r in rows)
    if depth is not None:
        rows = _fold(rows, depth, walker.groups)
    total = sum(r.params for r in rows)
    macs = sum(r.macs for r in rows)
    return Summary(
        name=name, input_shape=shape, output_shape=out, rows=rows,
        total_params=total, trainable_params=sum(r.trainable_params for r in rows),
        total_macs=macs, total_flops=2 * macs,
        receptive_field=receptive,
        convention=_convention_name(convention, preset, count), dtype=_dtype_name(dtype),
        batch_size=batch, activation_memory=sum(r.activation_memory for r in rows),
        parameter_memory=total * itemsize,
        total_input_grad_macs=sum(r.input_grad_macs for r in rows),
        total_weight_grad_macs=sum(r.weight_grad_macs for r in rows),
        saved_memory=sum(r.saved_memory for r in rows),
        itemsize=itemsize, inplace=inplace, machine=machine)


# --------------------------------------------------------------------------
# receptive fields
# --------------------------------------------------------------------------
