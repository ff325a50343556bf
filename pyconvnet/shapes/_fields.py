"""Receptive fields unit by unit: the input pixels each unit of a feature map
depends on, exactly, through every layer (transposed convolutions and
resizes included, where the field differs from unit to unit).

Each spatial dimension is handled on its own (every layer here is separable).
For every unit ``o`` of a map we keep the first and last input pixel its value
depends on, twice:

* the *field* (``lo``, ``hi``): on maps that extend past their borders, as the
  recurrence of :mod:`._walker` sees them, so that padding counts as pixels;
  units past a border (virtual units) are found from the map's period: a map
  whose units ``o`` and ``o + P`` see fields ``Q`` pixels apart;
* the *pixels seen* (``clo``, ``chi``): the pixels of the actual input, which
  is what the gradient of a unit reaches (padding holds no pixel).

A layer is described by its dependencies: for every output unit, up to ``T``
input units, as ``T`` index arrays with masks; the field of a unit is the hull
of the fields of the units it reads. Derived in :ref:`theory-graphs`.
"""
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from .._validation import ntuple
from ._graph import crop_box, norm_axis, pad_pairs, source_index, upsample_geometry
from ._sizes import _padding_pairs

__all__ = ["Axis", "initial", "layer_field", "join_field", "split_field", "summarise"]

_BIG = np.int64(1) << 60


@dataclass(frozen=True)
class Axis:
    """Per-unit field of one spatial dimension of a map."""

    lo: Any
    hi: Any
    clo: Any
    chi: Any
    period: Any = None      # (P units, Q pixels) or None

    @property
    def n(self):
        return len(self.lo)

    def at(self, idx):
        """(lo, hi) of the field of units ``idx`` (any integers)."""
        idx = np.asarray(idx, dtype=np.int64)
        lo = np.full(idx.shape, _BIG)
        hi = np.full(idx.shape, -_BIG)
        inside = (idx >= 0) & (idx < self.n)
        lo[inside] = self.lo[idx[inside]]
        hi[inside] = self.hi[idx[inside]]
        if self.period is not None and self.period[0] <= self.n:
            p, q = self.period
            out = ~inside
            r = idx[out] % p
            m = (idx[out] - r) // p
            base_lo, base_hi = self.lo[r], self.hi[r]
            ok = base_lo < _BIG
            lo[out] = np.where(ok, base_lo + m * q, _BIG)
            hi[out] = np.where(ok, base_hi + m * q, -_BIG)
        return lo, hi

    def seen(self, idx):
        idx = np.asarray(idx, dtype=np.int64)
        inside = (idx >= 0) & (idx < self.n)
        safe = np.where(inside, idx, 0)
        return (np.where(inside, self.clo[safe], _BIG),
                np.where(inside, self.chi[safe], -_BIG))


def initial(spatial):
    """The input: unit ``i`` is pixel ``i``."""
    return tuple(Axis(np.arange(n), np.arange(n), np.arange(n), np.arange(n), (1, 1))
                 for n in spatial)


def _gather(axis, deps, seen_deps=None):
    """Hull of the fields of the units each output unit reads.

    ``deps`` is a list of ``(index array, mask)`` (the mask may be None);
    ``seen_deps`` the same for the pixels seen (default: ``deps``, with the
    units past the borders dropped).
    """
    n = len(deps[0][0])
    lo = np.full(n, _BIG)
    hi = np.full(n, -_BIG)
    for idx, mask in deps:
        a, b = axis.at(idx)
        if mask is not None:
            a, b = np.where(mask, a, _BIG), np.where(mask, b, -_BIG)
        lo, hi = np.minimum(lo, a), np.maximum(hi, b)
    clo = np.full(n, _BIG)
    chi = np.full(n, -_BIG)
    for idx, mask in (deps if seen_deps is None else seen_deps):
        a, b = axis.seen(idx)
        if mask is not None:
            a, b = np.where(mask, a, _BIG), np.where(mask, b, -_BIG)
        clo, chi = np.minimum(clo, a), np.maximum(chi, b)
    return lo, hi, clo, chi


def _compose(period, step):
    """The period of a map made by a layer of period ``step`` = (units out,
    units in) from a map of ``period`` = (units, pixels)."""
    if period is None or step is None:
        return None
    p, q = period
    so, si = step
    lcm = p * si // math.gcd(p, si)
    return (lcm // si * so, lcm // p * q)


def _axis(axis, deps, step, seen_deps=None):
    lo, hi, clo, chi = _gather(axis, deps, seen_deps)
    return Axis(lo, hi, clo, chi, _compose(axis.period, step))


def _ratio(scale):
    """A scale as an exact fraction (a float scale factor's reciprocal is
    read as the simple fraction it stands for)."""
    if isinstance(scale, Fraction):
        return scale
    return Fraction(scale).limit_denominator(10 ** 6)


def _upsample_deps(cfg, n_in, n_out, scale):
    o = np.arange(n_out)
    mode = cfg["mode"]
    if mode == "nearest":
        s = Fraction(n_in, n_out) if scale is None else _ratio(scale)
        if n_out == n_in:
            idx = o
        else:
            idx = np.array([math.floor(i * s) for i in range(n_out)], dtype=np.int64)
        seen = np.minimum(idx, n_in - 1)
        return [(idx, None)], [(seen, None)], (s.denominator, s.numerator)
    align = cfg["align_corners"]
    if align:
        s = Fraction(n_in - 1, n_out - 1) if n_out > 1 else Fraction(0)
        srcs = [i * s for i in range(n_out)]
        raw = srcs
    else:
        s = Fraction(n_in, n_out) if scale is None else _ratio(scale)
        raw = [s * (i + Fraction(1, 2)) - Fraction(1, 2) for i in range(n_out)]
        srcs = [source_index(s, i, n_in, n_out, mode, align) for i in range(n_out)]
    i0 = np.array([math.floor(x) for x in raw], dtype=np.int64)
    frac = np.array([x != math.floor(x) for x in raw])
    deps = [(i0, None), (i0 + 1, frac)]
    c0 = np.array([min(math.floor(x), n_in - 1) for x in srcs], dtype=np.int64)
    cfrac = np.array([x != math.floor(x) for x in srcs]) & (c0 < n_in - 1)
    seen = [(c0, None), (c0 + 1, cfrac)]
    step = None if s == 0 else (s.denominator, s.numerator)
    return deps, seen, step


def layer_field(layer, field, in_shape, out_shape):
    """The field after a one-input leaf, or None once the layout is gone."""
    if field is None or out_shape is None or len(out_shape) < 2:
        return None
    kind, cfg = layer.kind, layer.config
    spatial, out_sp = in_shape[1:], out_shape[1:]
    nd = len(spatial)
    if len(field) != nd:
        return None
    if kind in ("conv", "max_pool", "avg_pool", "subsampling", "window"):
        k = ntuple(cfg["kernel_size"], nd, "kernel_size", 1)
        stride = cfg["stride"] if cfg.get("stride") is not None else cfg["kernel_size"]
        s = ntuple(stride, nd, "stride", 1)
        d = ntuple(cfg.get("dilation", 1), nd, "dilation", 1)
        pads = _padding_pairs(cfg.get("padding", 0), k, d, nd)
        out = []
        for ax, m, ki, si, di, (pl, _) in zip(field, out_sp, k, s, d, pads):
            o = np.arange(m)
            out.append(_axis(ax, [(o * si - pl + t * di, None) for t in range(ki)],
                             (1, si)))
        return tuple(out)
    if kind == "conv_transpose":
        k = ntuple(cfg["kernel_size"], nd, "kernel_size", 1)
        s = ntuple(cfg["stride"], nd, "stride", 1)
        d = ntuple(cfg["dilation"], nd, "dilation", 1)
        p = ntuple(cfg["padding"], nd, "padding", 0)
        out = []
        for ax, m, ki, si, di, pi in zip(field, out_sp, k, s, d, p):
            o = np.arange(m)
            deps = []
            for t in range(ki):
                num = o + pi - t * di
                deps.append((num // si, num % si == 0))
            out.append(_axis(ax, deps, (si, 1)))
        return tuple(out)
    if kind in ("adaptive_avg_pool", "adaptive_max_pool"):
        out = []
        for ax, n, m in zip(field, spatial, out_sp):
            o = np.arange(m)
            start, stop = (o * n) // m, -((-(o + 1) * n) // m)
            deps = [(start + t, start + t < stop) for t in range(int((stop - start).max()))]
            out.append(_axis(ax, deps, (1, n // m) if n % m == 0 else None))
        return tuple(out)
    if kind == "upsample":
        _, scales = upsample_geometry(cfg, spatial)
        out = []
        for ax, n, m, sc in zip(field, spatial, out_sp, scales):
            deps, seen, step = _upsample_deps(cfg, n, m, sc)
            out.append(_axis(ax, deps, step, seen))
        return tuple(out)
    if kind in ("pixel_shuffle", "pixel_unshuffle"):
        r = cfg["factor"]
        out = []
        for ax, m in zip(field, out_sp):
            o = np.arange(m)
            if kind == "pixel_shuffle":
                out.append(_axis(ax, [(o // r, None)], (r, 1)))
            else:
                out.append(_axis(ax, [(o * r + t, None) for t in range(r)], (1, r)))
        return tuple(out)
    if kind == "pad":
        out = []
        for ax, n, m, (b, _) in zip(field, spatial, out_sp,
                                    pad_pairs(cfg["padding"], nd)):
            j = np.arange(m) - b
            mode = cfg["mode"]
            if mode == "reflect":
                seen = np.where(j < 0, -j, np.where(j >= n, 2 * (n - 1) - j, j))
            elif mode == "replicate":
                seen = np.clip(j, 0, n - 1)
            elif mode == "circular":
                seen = j % n
            else:
                seen = j
            out.append(_axis(ax, [(j, None)], (1, 1), [(seen, None)]))
        return tuple(out)
    if kind == "crop":
        offset, _ = crop_box(cfg, spatial)
        return shifted(field, offset, out_sp)
    if kind == "slice":
        axis = norm_axis(cfg["axis"], in_shape)
        if axis == 0:
            return field
        n = in_shape[axis]
        r = range(n)[cfg["start"]:cfg["stop"]:cfg["step"]]
        out = list(field)
        o = np.arange(len(r))
        out[axis - 1] = _axis(field[axis - 1], [(r.start + o * r.step, None)],
                              (1, r.step))
        return tuple(out)
    if kind in ("flatten", "linear", "rbf"):
        return None
    if tuple(out_sp) != tuple(spatial):
        return None
    return field


def shifted(field, offset, out_sp):
    """The field of a window of a map starting at ``offset``."""
    return tuple(_axis(ax, [(np.arange(m) + off, None)], (1, 1))
                 for ax, off, m in zip(field, offset, out_sp))


def split_field(field, shape, axis, offset, size):
    """The field of one piece of a split (or slice) along ``axis``."""
    if field is None:
        return None
    axis = norm_axis(axis, shape)
    if axis == 0:
        return field
    out = list(field)
    out[axis - 1] = shifted((field[axis - 1],), (offset,), (size,))[0]
    return tuple(out)


def join_field(layer, fields, shapes, out_shape):
    """The field after a join of several inputs (add, mul, concat, crop)."""
    if out_shape is None or len(out_shape) < 2:
        return None
    out_sp = out_shape[1:]
    nd = len(out_sp)
    kind = layer.kind
    if kind == "crop":
        if fields[0] is None:
            return None
        offset, _ = crop_box(layer.config, shapes[0][1:], out_sp)
        return shifted(fields[0], offset, out_sp)
    axis = norm_axis(layer.config.get("axis", 0), out_shape) if kind == "concat" else 0
    out = []
    for d in range(nd):
        deps_by_input, start = [], 0
        for f, s in zip(fields, shapes):
            if f is None or len(s) != len(out_shape):
                start += s[d + 1] if len(s) == len(out_shape) else 0
                continue
            o = np.arange(out_sp[d])
            if axis == d + 1:
                idx, mask = o - start, (o >= start) & (o < start + s[d + 1])
            elif s[d + 1] == 1 and out_sp[d] > 1:
                idx, mask = np.zeros_like(o), None       # broadcast
            else:
                idx, mask = o, None
            deps_by_input.append((f[d], idx, mask, s[d + 1] == 1 and out_sp[d] > 1))
            start += s[d + 1]
        if not deps_by_input:
            return None
        n = out_sp[d]
        lo = np.full(n, _BIG)
        hi = np.full(n, -_BIG)
        clo, chi = lo.copy(), hi.copy()
        periods = set()
        for ax, idx, mask, broad in deps_by_input:
            a, b, c, e = _gather(ax, [(idx, mask)])
            lo, hi = np.minimum(lo, a), np.maximum(hi, b)
            clo, chi = np.minimum(clo, c), np.maximum(chi, e)
            periods.add(None if broad or axis == d + 1 else ax.period)
        period = None
        if None not in periods:
            ps = list(periods)
            lcm = math.lcm(*(p for p, _ in ps))
            qs = {lcm // p * q for p, q in ps}
            period = (lcm, qs.pop()) if len(qs) == 1 else None
        out.append(Axis(lo, hi, clo, chi, period))
    return tuple(out)


def extents(ax, seen=False):
    lo, hi = (ax.clo, ax.chi) if seen else (ax.lo, ax.hi)
    return np.where(lo < _BIG, hi - lo + 1, 0)


def summarise(field):
    """(largest size, smallest size, unit of the smallest, unit of the
    largest, centre of unit 0) per dimension."""
    big, small, at_small, at_big, centre = [], [], [], [], []
    for ax in field:
        e = extents(ax)
        big.append(int(e.max()))
        small.append(int(e.min()))
        at_small.append(int(e.argmin()))
        at_big.append(int(e.argmax()))
        centre.append(Fraction(int(ax.lo[0]) + int(ax.hi[0]), 2)
                      if ax.lo[0] < _BIG else None)
    return big, small, at_small, at_big, centre
