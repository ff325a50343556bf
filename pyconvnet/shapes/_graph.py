"""The shape, parameter and MAC rules of the layers that graphs brought:
joins (add, mul, concat), splits and slices, padding and crops, resizing
(upsample, pixel shuffle) and the normalisations of groups, layers and
instances. Derived in :ref:`theory-graphs`; the walk that applies them is
:mod:`._walker`'s.
"""
import math
from fractions import Fraction

from .._geometry import InputTooSmallError
from .._validation import ntuple
from ._formats import _shape_str

__all__ = ["NORMS", "RESHAPES", "broadcast", "crop_box", "join_shape", "leaf_rule",
           "pad_pairs", "split_shapes", "upsample_geometry"]

NORMS = ("group_norm", "instance_norm", "layer_norm")
RESHAPES = ("split", "slice", "pad", "crop", "upsample", "pixel_shuffle",
            "pixel_unshuffle", "channel_shuffle", "reshape")


def _spatial(shape, kind, rank=None):
    if len(shape) < 2:
        raise ValueError(
            f"a {kind} layer needs a (channels, *spatial) input, got "
            f"{_shape_str(shape)}; is a flatten or linear layer in the wrong place?")
    if rank is not None and len(shape) - 1 != rank:
        raise ValueError(f"a {kind} layer needs a (channels, height, width) input, "
                         f"got {_shape_str(shape)}")
    return shape[0], shape[1:]


def norm_axis(axis, shape, what="axis"):
    n = len(shape)
    if not -n <= axis < n:
        raise ValueError(f"{what}={axis} is out of range for the {n}-D sample "
                         f"shape {_shape_str(shape)} (the batch axis is not "
                         f"counted: 0 is the channels)")
    return axis % n


def pad_pairs(padding, nd):
    """(before, after) per spatial dimension."""
    if isinstance(padding, tuple) and padding and isinstance(padding[0], tuple):
        if len(padding) == 1:
            padding = padding * nd
        if len(padding) != nd:
            raise ValueError(f"padding has {len(padding)} pairs but the input has "
                             f"{nd} spatial dimensions")
        return padding
    return tuple((p, p) for p in ntuple(padding, nd, "padding", 0))


def crop_box(cfg, spatial, size=None):
    """(offset, size) per spatial dimension of a crop."""
    nd = len(spatial)
    size = ntuple(cfg["size"] if size is None else size, nd, "size", 1)
    if cfg["offset"] is None:
        offset = tuple((n - s) // 2 for n, s in zip(spatial, size))
    else:
        offset = ntuple(cfg["offset"], nd, "offset", 0)
    for i, (n, s, o) in enumerate(zip(spatial, size, offset)):
        if s > n or o + s > n:
            raise ValueError(f"a crop of size {s} at offset {o} does not fit in "
                             f"spatial dimension {i} of size {n}")
    return offset, size


def upsample_geometry(cfg, spatial):
    """(output sizes, per-dimension source scale or None) of an upsample.

    The scale maps output coordinates to input ones as PyTorch does: the
    reciprocal of a given scale factor, else ``n_in / n_out``.
    """
    nd = len(spatial)
    mode = cfg["mode"]
    want = {"linear": 1, "bilinear": 2, "trilinear": 3}.get(mode)
    if want is not None and want != nd:
        raise ValueError(f"mode={mode!r} is for {want}-D maps, but the input has "
                         f"{nd} spatial dimension{'s' if nd != 1 else ''}")
    if "size" in cfg:
        out = ntuple(cfg["size"], nd, "size", 1)
        scales = (None,) * nd
    else:
        factors = cfg["scale_factor"]
        factors = factors if isinstance(factors, tuple) else (factors,)
        if len(factors) == 1:
            factors = factors * nd
        if len(factors) != nd:
            raise ValueError(f"scale_factor has {len(factors)} values but the input "
                             f"has {nd} spatial dimensions")
        out = tuple(math.floor(n * float(f)) for n, f in zip(spatial, factors))
        if any(o < 1 for o in out):
            raise InputTooSmallError(f"scale_factor {cfg['scale_factor']} makes "
                                     f"{_shape_str(spatial)} vanish")
        scales = tuple(1.0 / float(f) for f in factors)
    return out, scales


def split_shapes(layer, shape):
    cfg = layer.config
    axis = norm_axis(cfg["axis"], shape)
    n = shape[axis]
    sizes = cfg["sizes"]
    if isinstance(sizes, int):
        pieces = [sizes] * (n // sizes) + ([n % sizes] if n % sizes else [])
    else:
        if sum(sizes) != n:
            raise ValueError(f"split sizes {list(sizes)} add up to {sum(sizes)}, "
                             f"but axis {axis} has {n}")
        pieces = list(sizes)
    return [shape[:axis] + (p,) + shape[axis + 1:] for p in pieces]


def _norm_macs(numel, affine, rule):
    if rule == "affine":
        return numel * (2 if affine else 1)
    if rule == "stats":
        return numel * (5 if affine else 4)
    return numel * int(rule or 0)


def leaf_rule(layer, shape, count):
    """(output shape, parameters, MACs) of a leaf of the kinds above."""
    kind, cfg = layer.kind, layer.config
    numel = math.prod(shape)
    if kind == "split":
        raise ValueError("a split has several outputs: use it as a node of a graph "
                         "and read its pieces as 'name:0', 'name:1', ...")
    if kind == "slice":
        axis = norm_axis(cfg["axis"], shape)
        n = len(range(shape[axis])[cfg["start"]:cfg["stop"]:cfg["step"]])
        if n == 0:
            raise ValueError(f"the slice {cfg['start']}:{cfg['stop']}:{cfg['step']} "
                             f"of axis {axis} (size {shape[axis]}) is empty")
        return shape[:axis] + (n,) + shape[axis + 1:], 0, 0
    if kind == "pad":
        c, spatial = _spatial(shape, kind)
        pairs = pad_pairs(cfg["padding"], len(spatial))
        for i, (n, (b, a)) in enumerate(zip(spatial, pairs)):
            limit = n - 1 if cfg["mode"] == "reflect" else n
            if cfg["mode"] in ("reflect", "circular") and max(b, a) > limit:
                raise ValueError(f"{cfg['mode']} padding of ({b}, {a}) needs at "
                                 f"most {limit} on each side of spatial dimension "
                                 f"{i} of size {n}")
        return (c,) + tuple(n + b + a for n, (b, a) in zip(spatial, pairs)), 0, 0
    if kind == "crop":
        c, spatial = _spatial(shape, kind)
        if cfg["size"] is None:
            raise ValueError("crop() without a size crops its first input to the "
                             "size of its second: use it as a node of a graph "
                             "with two inputs")
        _, size = crop_box(cfg, spatial)
        return (c,) + size, 0, 0
    if kind == "upsample":
        c, spatial = _spatial(shape, kind)
        out, _ = upsample_geometry(cfg, spatial)
        out_shape = (c,) + tuple(out)
        rule = count["upsample"]
        taps = 2 ** len(spatial) if cfg["mode"] != "nearest" else 1
        macs = 0 if not rule else math.prod(out_shape) * (
            taps if rule == "interpolation" else 1)
        return out_shape, 0, macs
    if kind in ("pixel_shuffle", "pixel_unshuffle"):
        c, (h, w) = _spatial(shape, kind, rank=2)
        r = cfg["factor"]
        if kind == "pixel_shuffle":
            if c % (r * r):
                raise ValueError(f"pixel_shuffle({r}) needs channels divisible by "
                                 f"{r * r}, got {c}")
            return (c // (r * r), h * r, w * r), 0, 0
        if h % r or w % r:
            raise ValueError(f"pixel_unshuffle({r}) needs height and width divisible "
                             f"by {r}, got {h}x{w}")
        return (c * r * r, h // r, w // r), 0, 0
    if kind == "channel_shuffle":
        g = cfg["groups"]
        if shape[0] % g:
            raise ValueError(f"channel_shuffle({g}) needs channels divisible by {g}, "
                             f"got {shape[0]}")
        return shape, 0, 0
    if kind == "reshape":
        dims = cfg["shape"]
        known = math.prod(v for v in dims if v != -1)
        if -1 in dims:
            if numel % known:
                raise ValueError(f"cannot reshape {_shape_str(shape)} ({numel} "
                                 f"elements) to {dims}")
            dims = tuple(numel // known if v == -1 else v for v in dims)
        if math.prod(dims) != numel:
            raise ValueError(f"cannot reshape {_shape_str(shape)} ({numel} elements) "
                             f"to {_shape_str(dims)} ({math.prod(dims)} elements)")
        return dims, 0, 0
    if kind in NORMS:
        affine = cfg["affine"]
        if kind == "group_norm":
            g = cfg["num_groups"]
            if shape[0] % g:
                raise ValueError(f"group_norm({g}) needs channels divisible by {g}, "
                                 f"got {shape[0]}")
            params = 2 * shape[0] if affine else 0
        elif kind == "instance_norm":
            _spatial(shape, kind)
            params = 2 * shape[0] if affine else 0
        else:
            norm = cfg["normalized_shape"]
            if norm is None:
                size = shape[0]
            else:
                norm = norm if isinstance(norm, tuple) else (norm,)
                if tuple(shape[len(shape) - len(norm):]) != norm or len(norm) > len(shape):
                    raise ValueError(f"normalized_shape {norm} does not match the "
                                     f"trailing dimensions of the input "
                                     f"{_shape_str(shape)}")
                size = math.prod(norm)
            params = size * (affine + (affine and cfg["bias"]))
        return shape, params, _norm_macs(numel, affine, count["norms"])
    raise ValueError(f"unknown layer kind {kind!r}")


def broadcast(shapes, refs, kind):
    """The shape NumPy broadcasting gives ``shapes``; the error names the
    inputs that do not broadcast."""
    rank = max(len(s) for s in shapes)
    out = [1] * rank
    owner = [None] * rank
    for s, ref in zip(shapes, refs):
        padded = (1,) * (rank - len(s)) + tuple(s)
        for i, n in enumerate(padded):
            if n == 1:
                continue
            if out[i] not in (1, n):
                raise ValueError(
                    f"{kind} of {owner[i]!r} {_shape_str(_of(shapes, refs, owner[i]))}"
                    f" and {ref!r} {_shape_str(s)}: the shapes do not match (nor "
                    f"broadcast) in dimension {i - (rank - len(s))}")
            out[i], owner[i] = n, ref
    return tuple(out)


def _of(shapes, refs, ref):
    return shapes[list(refs).index(ref)]


def join_shape(layer, shapes, refs):
    """Output shape of a join reading ``shapes`` from the inputs ``refs``."""
    kind = layer.kind
    if kind in ("add", "mul"):
        return broadcast(shapes, refs, kind)
    if kind == "concat":
        axis = layer.config.get("axis", 0)
        first = shapes[0]
        ax = norm_axis(axis, first)
        for s, ref in zip(shapes[1:], refs[1:]):
            if len(s) != len(first) or s[:ax] + s[ax + 1:] != first[:ax] + first[ax + 1:]:
                raise ValueError(
                    f"concat along axis {ax} of {refs[0]!r} {_shape_str(first)} and "
                    f"{ref!r} {_shape_str(s)}: the inputs must agree in every other "
                    f"dimension")
        return first[:ax] + (sum(s[ax] for s in shapes),) + first[ax + 1:]
    if kind == "crop":
        (c, spatial), (_, like) = _spatial(shapes[0], kind), _spatial(shapes[1], kind)
        if len(like) != len(spatial):
            raise ValueError(f"crop of {refs[0]!r} {_shape_str(shapes[0])} to the "
                             f"size of {refs[1]!r} {_shape_str(shapes[1])}: the "
                             f"ranks differ")
        try:
            crop_box(layer.config, spatial, like)
        except ValueError as exc:
            raise ValueError(f"crop of {refs[0]!r} {_shape_str(shapes[0])} to the "
                             f"size of {refs[1]!r} {_shape_str(shapes[1])}: {exc}") \
                from None
        return (c,) + tuple(like)
    raise ValueError(f"a {kind} layer reads one input")


def source_index(scale, o, n_in, n_out, mode, align_corners):
    """The (fractional) input coordinate PyTorch reads for output ``o``."""
    if mode == "nearest":
        if n_out == n_in:
            return Fraction(o)
        s = n_in / n_out if scale is None else scale
        return Fraction(min(math.floor(o * s), n_in - 1))
    if align_corners:
        s = Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)
        return o * s
    s = Fraction(n_in, n_out) if scale is None else Fraction(scale)
    return max(s * (o + Fraction(1, 2)) - Fraction(1, 2), Fraction(0))
