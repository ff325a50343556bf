"""The walk through a Layer tree shared by :func:`summary` and
:func:`receptive_field`: output shapes, counts and receptive fields, layer by
layer."""
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from .._geometry import InputTooSmallError, window_length
from .._specs import ACTIVATIONS, Layer
from .._validation import check_groups, ntuple
from ._conventions import count_rules
from ._costs import conv_params
from ._fields import initial, join_field, layer_field, split_field, summarise
from ._formats import _row_from_dict, _row_to_dict, _shape_str
from ._graph import NORMS, RESHAPES, crop_box, join_shape, leaf_rule, norm_axis, \
    pad_pairs, split_shapes, upsample_geometry
from ._sizes import _ndim, _padding_pairs, conv_output_size, conv_transpose_output_size, \
    pool_output_size
from ._training import VIEWS, backward_macs, output_is_input, saved_tensors

__all__ = ["LayerRow"]

# --------------------------------------------------------------------------
# the walker shared by summary() and receptive_field()
# --------------------------------------------------------------------------

_POOLS = ("max_pool", "avg_pool", "subsampling", "window")
_ADAPTIVE = ("adaptive_avg_pool", "adaptive_max_pool")
_DROP = "drop"   # the layer leaves no spatial extent to speak of


@dataclass(frozen=True)
class _Win:
    extent: int       # d(k-1)+1
    stride: Any
    pad_left: int
    transposed: bool = False


def _rf_step(rf, win):
    """Apply the receptive-field recurrence for one window (one dimension)."""
    size, jump, start = rf
    e = win.extent
    if win.transposed == "scale":
        # a resize: each output unit reads e neighbouring input units
        return (size + (e - 1) * jump, jump / win.stride, start)
    if win.transposed:
        size = size + ((e - 1) // win.stride) * jump
        start = start + Fraction(win.pad_left - Fraction(e - 1, 2), win.stride) * jump
        return (size, jump / win.stride, start)
    return (size + (e - 1) * jump,
            jump * win.stride,
            start + (Fraction(e - 1, 2) - win.pad_left) * jump)


def _rf_apply(rf, windows):
    if rf is None or windows is None:
        return rf
    if windows == _DROP:
        return None
    if len(rf) == 1 and len(windows) > 1:
        rf = rf * len(windows)
    if len(windows) == 1 and len(rf) > 1:
        windows = windows * len(rf)
    if len(rf) != len(windows):
        raise ValueError(f"a {len(windows)}-D window cannot follow a "
                         f"{len(rf)}-D feature map")
    return tuple(_rf_step(r, w) for r, w in zip(rf, windows))


def _rf_merge(rfs):
    """Largest field over all branches, per dimension."""
    rfs = [r for r in rfs if r is not None]
    if not rfs:
        return None
    ndim = max(len(r) for r in rfs)
    rfs = [r * ndim if len(r) == 1 else r for r in rfs]
    return tuple(max((r[i] for r in rfs), key=lambda t: (t[0], t[1]))
                 for i in range(ndim))


def _plain(x):
    x = Fraction(x)
    return int(x) if x.denominator == 1 else float(x)


def _collapse(values):
    values = tuple(_plain(v) for v in values)
    return values[0] if len(set(values)) == 1 else values


def _cfg_ndim(cfg):
    n = _ndim(*(v for v in cfg.values() if isinstance(v, tuple)
                and all(isinstance(x, int) for x in v)))
    return n or 1


def _windows(layer, spatial):
    """Sliding-window geometry of a leaf: a tuple of _Win, None or _DROP."""
    kind, cfg = layer.kind, layer.config
    if kind in ("conv",) + _POOLS:
        nd = len(spatial) if spatial is not None else _cfg_ndim(cfg)
        k = ntuple(cfg["kernel_size"], nd, "kernel_size", 1)
        stride = cfg["stride"] if cfg.get("stride") is not None else cfg["kernel_size"]
        s = ntuple(stride, nd, "stride", 1)
        d = ntuple(cfg.get("dilation", 1), nd, "dilation", 1)
        pads = _padding_pairs(cfg.get("padding", 0), k, d, nd)
        return tuple(_Win(di * (ki - 1) + 1, si, pl)
                     for ki, si, di, (pl, _) in zip(k, s, d, pads))
    if kind == "conv_transpose":
        nd = len(spatial) if spatial is not None else _cfg_ndim(cfg)
        k = ntuple(cfg["kernel_size"], nd, "kernel_size", 1)
        s = ntuple(cfg["stride"], nd, "stride", 1)
        d = ntuple(cfg["dilation"], nd, "dilation", 1)
        p = ntuple(cfg["padding"], nd, "padding", 0)
        return tuple(_Win(di * (ki - 1) + 1, si, pi, True)
                     for ki, si, di, pi in zip(k, s, d, p))
    if kind in _ADAPTIVE:
        if spatial is None:
            raise ValueError("the receptive field of adaptive pooling depends on "
                             "the input size: pass input_shape")
        out = _adaptive_out(cfg["output_size"], spatial)
        wins = []
        for n, o in zip(spatial, out):
            # window i covers [floor(i n / o), ceil((i + 1) n / o))
            longest = max(-(-(i + 1) * n // o) - (i * n // o) for i in range(o))
            wins.append(_Win(longest, Fraction(n, o), 0))
        return tuple(wins)
    if kind in ("flatten", "linear", "rbf"):
        return _DROP
    if kind in RESHAPES and spatial is not None:
        return _reshape_windows(layer, spatial)
    return None


def _reshape_windows(layer, spatial):
    """The recurrence's view of a pad, crop, slice or resize (per dimension)."""
    kind, cfg = layer.kind, layer.config
    nd = len(spatial)
    if kind == "pad":
        return tuple(_Win(1, 1, b) for b, _ in pad_pairs(cfg["padding"], nd))
    if kind == "crop":
        if cfg["size"] is None:
            return None
        offset, _ = crop_box(cfg, spatial)
        return tuple(_Win(1, 1, -o) for o in offset)
    if kind == "slice":
        axis = norm_axis(cfg["axis"], (0,) + tuple(spatial))
        if axis == 0:
            return None
        n = spatial[axis - 1]
        start = range(n)[cfg["start"]:cfg["stop"]:cfg["step"]].start
        return tuple(_Win(1, cfg["step"], -start) if i == axis - 1 else _Win(1, 1, 0)
                     for i in range(nd))
    if kind == "reshape":
        return None
    if kind == "pixel_unshuffle":
        r = cfg["factor"]
        return (_Win(r, r, 0),) * nd
    if kind == "pixel_shuffle":
        return (_Win(1, cfg["factor"], 0, True),) * nd
    if kind == "upsample":
        out, _ = upsample_geometry(cfg, spatial)
        linear = cfg["mode"] != "nearest"
        return tuple(_Win(2 if linear else 1, Fraction(o, n), 0, "scale")
                     for n, o in zip(spatial, out))
    return None


def _adaptive_out(output_size, spatial):
    nd = len(spatial)
    if isinstance(output_size, tuple):
        if len(output_size) != nd:
            raise ValueError(f"output_size has {len(output_size)} entries but the"
                             f" input has {nd} spatial dimensions")
        return tuple(n if o is None else o for n, o in zip(spatial, output_size))
    return (output_size,) * nd


@dataclass(frozen=True)
class LayerRow:
    """One row of a :class:`Summary`.

    Attributes
    ----------
    name : str
        Dotted path of the layer in the spec.
    kind : str
    output_shape : tuple of int
        Without the batch dimension.
    params, trainable_params : int
    macs : int
        Under the summary's convention.
    receptive_field : int, tuple or None
        Size in input pixels (a tuple when it differs per dimension; None
        once the spatial layout is gone).
    rf_jump, rf_start : number, tuple or None
        Effective stride and centre of the first unit's field.
    activation_memory : int
        Bytes of this layer's output for the summary's dtype and batch size.
    input_shape : tuple of int or None
        Shape of the layer's input, without the batch dimension (None for
        the rows that join branches, and when the summary has no input
        shape).
    layer : Layer or None
        The spec of a leaf layer (None for the rows that join branches).
    input_grad_macs, weight_grad_macs : int
        Multiply-adds of the backward pass for one sample: the gradient of
        the layer's input (0 when nothing before it needs a gradient, as for
        the first layer) and of its trainable parameters, under the
        summary's convention.
    backward_macs : int
        ``input_grad_macs + weight_grad_macs``.
    saved_memory : int
        Bytes the layer keeps for its backward pass at the summary's batch
        size and dtype; a tensor kept by several layers is counted at the
        first of them.
    bytes_moved : int
        Bytes of the layer's inputs, parameters and outputs at the summary's
        batch size and dtype: the least a forward pass reads and writes.
    predicted_time : float or None
        Seconds of the forward pass on the summary's ``machine``: the larger
        of its FLOPs over the peak rate and its bytes over the bandwidth
        (None without a machine).
    bound : {'compute', 'memory'} or None
        Which of the two limits bounds the predicted time (None without a
        machine).
    rf_range : tuple or None
        ``(smallest, largest)`` receptive field over the units of the
        layer's output, when they differ (after a transposed convolution or
        a resize); None when every unit sees a field of the same size.
    rf_units : tuple or None
        ``(unit of the smallest, unit of the largest)`` field, as indices
        into the spatial dimensions of the output (the first such unit).
    unit_fields : tuple or None
        Per spatial dimension, ``(lo, hi, seen_lo, seen_hi)``: integer
        arrays with the first and last input pixel of each output unit's
        field, counting padding as pixels, and of the pixels of the actual
        input it depends on (what its gradient reaches); ``lo > hi`` for a
        unit that depends on no pixel. None without an input shape.

    Notes
    -----
    Derived in :ref:`theory-parameter-count` and :ref:`theory-training-costs`.

    Examples
    --------
    >>> row = summary([conv(8, 3, name="c1")], (3, 32, 32)).rows[0]
    >>> row.name, row.output_shape, row.params
    ('c1', (8, 30, 30), 224)
    """

    name: str
    kind: str
    output_shape: tuple
    params: int
    trainable_params: int
    macs: int
    receptive_field: Any
    rf_jump: Any
    rf_start: Any
    activation_memory: int
    input_shape: Any = field(default=None, compare=False)
    layer: Any = field(default=None, compare=False, repr=False)
    input_grad_macs: int = field(default=0, compare=False)
    weight_grad_macs: int = field(default=0, compare=False)
    saved_memory: int = field(default=0, compare=False)
    bytes_moved: int = field(default=0, compare=False)
    predicted_time: Any = field(default=None, compare=False)
    bound: Any = field(default=None, compare=False)
    batch_size: int = field(default=1, compare=False, repr=False)
    rf_range: Any = field(default=None, compare=False)
    rf_units: Any = field(default=None, compare=False)
    unit_fields: Any = field(default=None, compare=False, repr=False)

    @property
    def backward_macs(self):
        """``input_grad_macs + weight_grad_macs``, for one sample."""
        return self.input_grad_macs + self.weight_grad_macs

    @property
    def flops(self):
        """``2 * macs``, for one sample."""
        return 2 * self.macs

    @property
    def arithmetic_intensity(self):
        """FLOPs of the forward pass per byte moved (0 for a row that moves
        nothing)."""
        if not self.bytes_moved:
            return 0.0
        return 2 * self.macs * self.batch_size / self.bytes_moved

    def to_dict(self):
        """The row as plain data, in the schema of :meth:`Summary.to_dict`
        (:ref:`summary-schema`): shapes and receptive fields are lists,
        one entry per axis, empty where there is none.

        Examples
        --------
        >>> row = summary([conv(8, 3, name="c1")], (3, 32, 32)).rows[0]
        >>> row.to_dict()["receptive_field"], row.to_dict()["layer"]["kind"]
        ([3, 3], 'conv')
        """
        return _row_to_dict(self)

    @classmethod
    def from_dict(cls, data, batch_size=1):
        """The :class:`LayerRow` of a dict written by :meth:`to_dict`
        (``batch_size`` is the summary's).

        Examples
        --------
        >>> row = summary([conv(8, 3, name="c1")], (3, 32, 32)).rows[0]
        >>> LayerRow.from_dict(row.to_dict()) == row
        True
        """
        return _row_from_dict(data, batch_size, "row", cls)


class _Walker:
    """Propagates shapes and receptive fields through a Layer tree.

    With ``shapes=False`` only receptive fields are tracked (no input shape
    needed, except for adaptive pooling).
    """

    def __init__(self, convention="torchvision", itemsize=4, batch_size=1,
                 shapes=True, inplace=False, count=None, preset=None):
        self.full = convention == "full" if preset is None else preset == "full"
        self.count = count_rules(convention, count, preset)
        self.itemsize = itemsize
        self.batch = batch_size
        self.shapes = shapes
        self.inplace = inplace
        self.rows = []
        self.tensors = 0        # activation tensors made so far
        self.kept = set()       # keys of the tensors kept for the backward pass
        self.groups = {}        # row-name prefix -> the composite layer there
        self.storage = {}       # tensor -> elements of the storage it views

    def new_tensor(self):
        self.tensors += 1
        return self.tensors

    # composites ---------------------------------------------------------
    def run(self, layer, state, path):
        """Walk ``layer`` from ``state``, a tuple ``(shape, receptive field)``
        or ``(shape, receptive field, requires grad, tensor)``; returns the
        four-tuple of the output."""
        if len(state) == 2:
            shape = state[0]
            field0 = initial(shape[1:]) if self.shapes and shape is not None \
                and len(shape) > 1 else None
            state = (*state, False, self.new_tensor(), field0)
        kind = layer.kind
        if layer.children:
            self.groups.setdefault(path, layer)
        if kind == "sequential":
            for i, child in enumerate(layer.children):
                state = self.run(child, state, _join(path, child.name or str(i)))
            return state
        if kind == "residual":
            body, shortcut = layer.children
            a = self.run(body, state, _join(path, body.name))
            b = state if shortcut is None else self.run(
                shortcut, state, _join(path, shortcut.name or "shortcut"))
            state = self.merge("add", [a, b], _join(path, "add"))
            act = layer.config.get("activation")
            if act is not None:
                state = self.run(act, state, _join(path, act.name or act.kind))
            return state
        if kind == "concat" and layer.children:
            outs = [self.run(br, state, _join(path, br.name or f"branch{i + 1}"))
                    for i, br in enumerate(layer.children)]
            if layer.config.get("axis", 0):
                return self.join(layer, outs, [f"branch{i + 1}" for i in
                                               range(len(outs))], _join(path, "cat"))
            return self.merge("concat", outs, _join(path, "cat"))
        if kind == "graph":
            return self.graph(layer, state, path)
        if kind == "dense_block":
            for i, child in enumerate(layer.children):
                child_path = _join(path, child.name or f"layer{i + 1}")
                new = self.run(child, state, child_path)
                state = self.merge("concat", [state, new], _join(child_path, "cat"))
            return state
        return self.leaf(layer, state, path)

    def merge(self, op, states, path):
        shapes = [s[0] for s in states]
        shape = None
        if self.shapes:
            if op == "add":
                if len(set(shapes)) != 1:
                    raise ValueError(
                        f"layer '{path}': the branches of a residual block must "
                        f"have the same shape to be added, got "
                        + " and ".join(_shape_str(s) for s in shapes)
                        + " (use a projection shortcut)")
                shape = shapes[0]
            else:
                spatial = {s[1:] for s in shapes}
                if len(spatial) != 1 or any(len(s) < 1 for s in shapes):
                    raise ValueError(
                        f"layer '{path}': branches concatenated along channels "
                        "must agree in every other dimension, got "
                        + ", ".join(_shape_str(s) for s in shapes))
                shape = (sum(s[0] for s in shapes),) + shapes[0][1:]
        rf = _rf_merge([s[1] for s in states])
        fld = join_field(Layer(op), [s[4] for s in states], shapes, shape) \
            if shape is not None else None
        ops = math.prod(shape) * (len(states) - 1) if (
            self.count["residual"] and op == "add" and shape) else 0
        moved = 0
        if self.shapes:
            moved = (sum(math.prod(s) for s in shapes) + math.prod(shape)) \
                * self.itemsize * self.batch
        self.add_row(path, op, shape, 0, 0, ops, rf, bytes_moved=moved, field=fld)
        return (shape, rf, any(s[2] for s in states), self.new_tensor(), fld)

    def graph(self, layer, state, path):
        """Walk the nodes of a graph in their order; returns the output's state."""
        env = {layer.config["inputs"][0]: state}
        for nd in layer.children:
            child = nd.children[0]
            refs = nd.config["inputs"]
            states = [self.lookup(env, ref, nd.name) for ref in refs]
            where = _join(path, nd.name)
            if child.kind == "split":
                env[nd.name] = self.split(child, states[0], where)
            elif len(states) > 1:
                env[nd.name] = self.join(child, states, refs, where)
            else:
                env[nd.name] = self.run(child, states[0], where)
        return env[layer.config["outputs"][0]]

    @staticmethod
    def lookup(env, ref, reader):
        base, _, piece = ref.partition(":")
        value = env[base]
        if not piece:
            return value
        if int(piece) >= len(value):
            raise ValueError(f"node {reader!r} reads {ref!r}, but split node "
                             f"{base!r} has {len(value)} pieces")
        return value[int(piece)]

    def split(self, layer, state, path):
        """The pieces of a split, one row (``path:k``) and state each."""
        shape, rf, grad, tensor, fld = state
        pieces = [None]
        if self.shapes and shape is not None:
            try:
                pieces = split_shapes(layer, shape)
            except ValueError as exc:
                raise ValueError(f"layer '{path}' (split) on input "
                                 f"{_shape_str(shape)}: {exc}") from None
        axis = layer.config["axis"]
        spatial_axis = shape is not None and norm_axis(axis, shape) > 0
        out = []
        for k, piece in enumerate(pieces):
            # a split along a spatial axis moves the later pieces' fields
            prf = rf
            if spatial_axis and rf is not None:
                ax = norm_axis(axis, shape) - 1
                offset = sum(p[ax + 1] for p in pieces[:k])
                prf = tuple(_rf_step(r, _Win(1, 1, -offset)) if i == ax else r
                            for i, r in enumerate(rf))
            pfld = None if piece is None else split_field(
                fld, shape, axis, sum(p[norm_axis(axis, shape)] for p in pieces[:k]),
                piece[norm_axis(axis, shape)])
            self.add_row(f"{path}:{k}", "split", piece, 0, 0, 0, prf, shape, layer,
                         field=pfld)
            out.append((piece, prf, grad, tensor, pfld))
        return out

    def join(self, layer, states, refs, path):
        """A layer reading several inputs: add, mul, concat or crop."""
        shapes = [s[0] for s in states]
        shape = None
        if self.shapes and all(s is not None for s in shapes):
            try:
                shape = join_shape(layer, shapes, refs)
            except ValueError as exc:
                raise ValueError(f"node '{path}': {exc}") from None
        kind = layer.kind
        if kind == "crop":
            rf = states[0][1]
            if rf is not None and shape is not None:
                offset, _ = crop_box(layer.config, shapes[0][1:], shape[1:])
                rf = _rf_apply(rf, tuple(_Win(1, 1, -o) for o in offset))
        elif kind == "concat" and shape is not None and \
                norm_axis(layer.config.get("axis", 0), shape) > 0:
            ax = norm_axis(layer.config["axis"], shape) - 1
            rfs, offset = [], 0
            for s in states:
                if s[1] is not None:
                    rfs.append(tuple(_rf_step(r, _Win(1, 1, offset)) if i == ax else r
                                     for i, r in enumerate(s[1])))
                offset += s[0][ax + 1]
            rf = _rf_merge(rfs)
        else:
            rf = _rf_merge([s[1] for s in states])
        ops = gi = saved = moved = 0
        grad = any(s[2] for s in states)
        if shape is not None:
            numel = math.prod(shape)
            if kind in ("add", "mul") and self.count["residual"]:
                ops = numel * (len(states) - 1)
            if kind == "mul":
                # each input's gradient is the output gradient times the others
                if self.full:
                    gi = numel * sum(1 for s in states if s[2])
                if grad:
                    saved = self.keep([("t%d" % i, math.prod(s[0]), None)
                                       for i, s in enumerate(states)],
                                      None, None, [s[3] for s in states])
            moved = (sum(math.prod(s) for s in shapes) + numel) * self.itemsize \
                * self.batch
        fld = None if shape is None else join_field(layer, [s[4] for s in states],
                                                    shapes, shape)
        self.add_row(path, kind, shape, 0, 0, ops, rf, None, layer, gi, 0, saved,
                     moved, field=fld)
        return (shape, rf, grad, self.new_tensor(), fld)

    # leaves -------------------------------------------------------------
    def leaf(self, layer, state, path):
        shape, rf, grad, tensor, fld = state
        try:
            spatial = shape[1:] if shape is not None and len(shape) > 1 else None
            if self.shapes and shape is not None:
                out, params, macs = self.leaf_shape(layer, shape)
            else:
                out, params, macs = None, 0, 0
            wins = _windows(layer, spatial if self.shapes else None)
        except InputTooSmallError as exc:
            raise InputTooSmallError(
                f"the input is too small for the network: the feature map "
                f"vanishes at layer '{path}' ({layer.kind}) whose input is "
                f"{_shape_str(shape)}: {exc}") from None
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"layer '{path}' ({layer.kind}) on input "
                            f"{_shape_str(shape)}: {exc}") from None
        trainable = params if layer.config.get("trainable", True) else 0
        rf = _rf_apply(rf, wins)
        if out is not None and (len(out) < 2 or (layer.kind == "reshape"
                                                 and out[1:] != shape[1:])):
            rf = None
        out_tensor = tensor if output_is_input(layer, self.inplace) else self.new_tensor()
        if shape is not None and self.shapes:
            # a view (flatten, a crop, a slice) keeps its input's storage alive:
            # a layer that saves the view saves that storage
            self.storage.setdefault(tensor, math.prod(shape))
            if out is not None:
                self.storage.setdefault(out_tensor, math.prod(out))
        gi = gw = saved = moved = 0
        if self.shapes and shape is not None:
            gi, gw = backward_macs(layer, shape, out, params, bool(trainable), macs,
                                   grad, self.full)
            saved = self.keep(saved_tensors(layer, shape, out, grad, bool(trainable),
                                            self.inplace), tensor, out_tensor)
            if layer.kind not in VIEWS:     # a view moves no data
                moved = (math.prod(shape) + math.prod(out)) * self.itemsize \
                    * self.batch + params * self.itemsize
        fld = layer_field(layer, fld, shape, out) if rf is not None else None
        self.add_row(path, layer.kind, out, params, trainable, macs, rf, shape, layer,
                     gi, gw, saved, moved, field=fld)
        return (out, rf, grad or bool(trainable), out_tensor, fld)

    def keep(self, tensors, tensor_in, tensor_out, inputs=()):
        """Bytes of the tensors in ``tensors`` not kept by an earlier layer
        (``"t0"``, ``"t1"``, ... name the tensors ``inputs`` of a join)."""
        total = 0
        for what, numel, size in tensors:
            if what.startswith("t") and what[1:].isdigit():
                key = ("t", inputs[int(what[1:])])
            elif what == "input":
                key = ("t", tensor_in)
            elif what == "output":
                key = ("t", tensor_out)
            else:
                key = ("own", len(self.kept))
            if key in self.kept:
                continue
            self.kept.add(key)
            if key[0] == "t":
                numel = max(numel, self.storage.get(key[1], numel))
            batch = 1 if what == "stats" else self.batch
            total += numel * (self.itemsize if size is None else size) * batch
        return total

    def add_row(self, path, kind, shape, params, trainable, macs, rf, input_shape=None,
                layer=None, input_grad_macs=0, weight_grad_macs=0, saved_memory=0,
                bytes_moved=0, field=None):
        mem = 0 if shape is None else math.prod(shape) * self.itemsize * self.batch
        span = units = fields = None
        if rf is None:
            size = jump = start = None
        elif field is not None and len(field) == len(rf):
            # unit by unit: exact through transposed convolutions and resizes
            big, small, at_small, at_big, centre = summarise(field)
            size = _collapse(big)
            jump = _collapse(r[1] for r in rf)
            start = _collapse(c if c is not None else r[2] for c, r in zip(centre, rf))
            if small != big:
                span = (_collapse(small), _collapse(big))
                units = (tuple(at_small), tuple(at_big))
            fields = tuple((a.lo, a.hi, a.clo, a.chi) for a in field)
        else:
            # a transposed convolution can make sizes fractional: round up
            size = _collapse(math.ceil(r[0]) for r in rf)
            jump = _collapse(r[1] for r in rf)
            start = _collapse(r[2] for r in rf)
        self.rows.append(LayerRow(path or kind, kind, shape, params, trainable,
                                  macs, size, jump, start, mem, input_shape, layer,
                                  input_grad_macs, weight_grad_macs, saved_memory,
                                  bytes_moved, batch_size=self.batch, rf_range=span,
                                  rf_units=units, unit_fields=fields))

    def leaf_shape(self, layer, shape):
        """(output shape, params, MACs) of a leaf for an input shape."""
        kind, cfg = layer.kind, layer.config
        count = self.count
        full = count["bias"]
        numel_in = math.prod(shape)
        if kind == "conv":
            c, spatial = _need_spatial(shape, kind)
            nd = len(spatial)
            if cfg.get("in_channels", c) != c:
                raise ValueError(f"in_channels={cfg['in_channels']} does not match"
                                 f" the {c} channels of the input (the first axis"
                                 f" of a shape is the channels)")
            k = ntuple(cfg["kernel_size"], nd, "kernel_size", 1)
            s = ntuple(cfg["stride"], nd, "stride", 1)
            d = ntuple(cfg["dilation"], nd, "dilation", 1)
            pads = _padding_pairs(cfg["padding"], k, d, nd)
            out_sp = tuple(window_length(n, ki, si, pl, pr, di, False)
                           for n, ki, si, (pl, pr), di in zip(spatial, k, s, pads, d))
            cout = cfg["out_channels"]
            positions = math.prod(out_sp)
            bias = cout if cfg["bias"] else 0
            table = cfg.get("connections")
            if table is not None:
                bad = [i for row in table for i in row if i >= c]
                if bad:
                    raise ValueError(f"connections refer to input map {bad[0]} but"
                                     f" the input has {c} channels")
                weights = sum(len(row) for row in table) * math.prod(k)
                params = weights + bias
            else:
                params = conv_params(c, cout, k, cfg["groups"], cfg["bias"])
                weights = params - bias
            macs = weights * positions
            if full and cfg["bias"]:
                macs += cout * positions
            return (cout,) + out_sp, params, macs
        if kind == "conv_transpose":
            c, spatial = _need_spatial(shape, kind)
            nd = len(spatial)
            if cfg.get("in_channels", c) != c:
                raise ValueError(f"in_channels={cfg['in_channels']} does not match"
                                 f" the {c} channels of the input (the first axis"
                                 f" of a shape is the channels)")
            g, cout = cfg["groups"], cfg["out_channels"]
            check_groups(c, cout, g)
            out_sp = conv_transpose_output_size(
                spatial, *(ntuple(cfg[a], nd, a, 0) for a in (
                    "kernel_size", "stride", "padding", "output_padding",
                    "dilation")))
            k = ntuple(cfg["kernel_size"], nd, "kernel_size", 1)
            weights = c * (cout // g) * math.prod(k)
            params = weights + (cout if cfg["bias"] else 0)
            macs = weights * math.prod(spatial)
            if full and cfg["bias"]:
                macs += cout * math.prod(out_sp)
            return (cout,) + tuple(out_sp), params, macs
        if kind in ("linear", "rbf"):
            fin = shape[-1]
            if cfg.get("in_features", fin) != fin:
                raise ValueError(f"in_features={cfg['in_features']} does not match"
                                 f" the last dimension ({fin}) of the input")
            fout = cfg["out_features"]
            bias = cfg.get("bias", False)
            rows = numel_in // fin
            macs = rows * fin * fout + (rows * fout if full and bias else 0)
            return shape[:-1] + (fout,), fin * fout + (fout if bias else 0), macs
        if kind in _POOLS:
            c, spatial = _need_spatial(shape, kind)
            nd = len(spatial)
            stride = cfg["stride"] if cfg["stride"] is not None else cfg["kernel_size"]
            if kind == "window":
                out_sp = conv_output_size(spatial, *(
                    ntuple(v, nd, a, 0) for v, a in (
                        (cfg["kernel_size"], "kernel_size"), (stride, "stride"),
                        (cfg["padding"], "padding"), (cfg["dilation"], "dilation"))))
            else:
                out_sp = pool_output_size(spatial, *(
                    ntuple(v, nd, a, 0) for v, a in (
                        (cfg["kernel_size"], "kernel_size"), (stride, "stride"),
                        (cfg["padding"], "padding"), (cfg["dilation"], "dilation"))),
                    ceil_mode=cfg["ceil_mode"])
            out = (c,) + tuple(out_sp)
            params = 2 * c if kind == "subsampling" else 0
            kvol = math.prod(ntuple(cfg["kernel_size"], nd, "kernel_size", 1))
            rule = count["pooling"]
            macs = math.prod(out) * (kvol + (kind == "subsampling")) if rule == "window" \
                else numel_in if rule == "input" and kind != "window" else 0
            return out, params, macs
        if kind in _ADAPTIVE:
            c, spatial = _need_spatial(shape, kind)
            out = (c,) + _adaptive_out(cfg["output_size"], spatial)
            counted = count["adaptive_pooling"] if kind == "adaptive_avg_pool" \
                else count["pooling"] is not None
            return out, 0, numel_in if counted else 0
        if kind in RESHAPES or kind in NORMS:
            return leaf_rule(layer, shape, count)
        if kind in ("add", "mul") or (kind == "concat" and not layer.children):
            raise ValueError(f"a {kind} layer joins two or more inputs: use it as a "
                             "node of a graph")
        if kind == "batch_norm":
            params = 2 * shape[0] if cfg["affine"] else 0
            per = count["batch_norm"]
            if per == "affine":
                per = 2 if cfg["affine"] else 1
            return shape, params, numel_in * per
        if kind == "lrn":
            return shape, 0, numel_in * cfg["size"] if count["lrn"] else 0
        if kind == "flatten":
            return (numel_in,), 0, 0
        if kind in ("dropout", "identity"):
            return shape, 0, 0
        if kind in ACTIVATIONS:
            return shape, 0, numel_in if count["activations"] else 0
        raise ValueError(f"unknown layer kind {kind!r}")


def _need_spatial(shape, kind):
    if len(shape) < 2:
        raise ValueError(
            f"a {kind} layer needs a (channels, *spatial) input, got "
            f"{_shape_str(shape)}; is a flatten or linear layer in the wrong place?")
    return shape[0], shape[1:]


def _join(path, name):
    if not name:
        return path
    return f"{path}.{name}" if path else name


def _final_row(rows):
    """The row of :func:`_final_field`'s feature map (a LayerRow)."""
    found = None
    extent = [i for i, r in enumerate(rows) if r.output_shape is not None
              and len(r.output_shape) > 1 and math.prod(r.output_shape[1:]) > 1]
    end = extent[-1] if extent else -1
    for i, r in enumerate(rows):
        if i > end and r.kind in _ADAPTIVE and r.output_shape is not None and all(
                n == 1 for n in r.output_shape[1:]):
            break
        if r.receptive_field is not None:
            found = r
    return found


def _final_field(rows):
    """(size, jump, start) of the last feature map with spatial extent.

    That is the last row with a receptive field before the first global
    pooling (adaptive pooling to size 1), which collapses the map into a
    feature vector: for ResNet-50 the field of ``layer4``, not of ``avgpool``.
    """
    last = (None, None, None)
    # a global pooling inside the network (a squeeze-and-excitation gate)
    # does not end it: only one after the last map with spatial extent does
    extent = [i for i, r in enumerate(rows) if r.output_shape is not None
              and len(r.output_shape) > 1 and math.prod(r.output_shape[1:]) > 1]
    end = extent[-1] if extent else -1
    for i, r in enumerate(rows):
        if i > end and r.kind in _ADAPTIVE and r.output_shape is not None and all(
                n == 1 for n in r.output_shape[1:]):
            break
        if r.receptive_field is not None:
            last = (r.receptive_field, r.rf_jump, r.rf_start)
    return last


# --------------------------------------------------------------------------
# summary
# --------------------------------------------------------------------------
