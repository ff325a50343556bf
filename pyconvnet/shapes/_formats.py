"""The :class:`Summary` of a network and its output formats: a text table,
Markdown, CSV and JSON."""
import csv
import dataclasses
import io
import json
import sys
from dataclasses import dataclass, field
from typing import Any

from .._specs import Layer
from ._roofline import Machine
from ._training import OPTIMIZER_STATES, check_optimizer

__all__ = ["Summary"]


def _fmt(n):
    return f"{n:,}"


def _shape_str(shape):
    return "?" if shape is None else "x".join(map(str, shape))


# --------------------------------------------------------------------------
# the JSON schema of summaries (docs/api/network_files.rst): every field has
# one type; per-axis values are always lists, empty where there is no axis
# --------------------------------------------------------------------------

SUMMARY_FORMAT = "pyconvnet.summary"
SUMMARY_VERSION = 1


def _axes(value, n):
    """A receptive-field value (None, a number or a tuple) as one entry per
    spatial axis."""
    if value is None:
        return []
    if isinstance(value, tuple):
        return list(value)
    return [value] * max(n, 1)


def _from_axes(values, where):
    """The inverse of :func:`_axes`: what the walker stores (a number when
    every axis agrees, else a tuple, None for no axis)."""
    if not isinstance(values, list):
        raise TypeError(f"{where} must be a list (one value per spatial axis), got "
                        f"{type(values).__name__}")
    if not values:
        return None
    return values[0] if len(set(values)) == 1 else tuple(values)


def _spatial_axes(shape):
    return len(shape) - 1 if shape else 0


def _row_to_dict(row):
    n = _spatial_axes(row.output_shape)
    layer = row.layer
    return {"name": row.name, "kind": row.kind,
            "input_shape": [] if row.input_shape is None else list(row.input_shape),
            "output_shape": [] if row.output_shape is None else list(row.output_shape),
            "params": row.params, "trainable_params": row.trainable_params,
            "macs": row.macs, "flops": row.flops,
            "receptive_field": _axes(row.receptive_field, n),
            "rf_jump": _axes(row.rf_jump, n),
            "rf_start": _axes(row.rf_start, n),
            "rf_range": [] if row.rf_range is None
            else [_axes(v, n) for v in row.rf_range],
            "rf_units": [] if row.rf_units is None else [list(u) for u in row.rf_units],
            "activation_memory": row.activation_memory,
            "input_grad_macs": row.input_grad_macs,
            "weight_grad_macs": row.weight_grad_macs,
            "backward_macs": row.backward_macs,
            "saved_memory": row.saved_memory,
            "bytes_moved": row.bytes_moved,
            "arithmetic_intensity": float(row.arithmetic_intensity),
            "predicted_time": row.predicted_time,
            "bound": row.bound,
            "layer": {} if layer is None else layer.to_dict()}


def _field(data, key, types, where, nullable=False):
    if key not in data:
        raise ValueError(f"{where}: the field {key!r} is missing")
    value = data[key]
    if value is None and nullable:
        return None
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        names = " or ".join(t.__name__ for t in types)
        raise TypeError(f"{where}.{key} must be {names}"
                        + (" or null" if nullable else "")
                        + f", got {value!r}")
    return value


def _pair(values, where, per_axis):
    """``rf_range`` (two per-axis lists) or ``rf_units`` (two unit indices)
    from their lists; None from an empty list."""
    if not isinstance(values, list) or len(values) not in (0, 2):
        raise TypeError(f"{where} must be a list of two lists or empty, got {values!r}")
    if not values:
        return None
    if per_axis:
        return tuple(_from_axes(v, where) for v in values)
    return tuple(tuple(v) for v in values)


def _shape_field(data, key, where):
    value = _field(data, key, (list,), where)
    return tuple(value) if value else None


def _row_type():
    """:class:`LayerRow`, which ``_walker`` defines: that module imports this
    one, so this one looks it up (the package has imported both)."""
    return sys.modules[__name__.rpartition(".")[0] + "._walker"].LayerRow


def _row_from_dict(data, batch_size, where, row_type=None):
    if not isinstance(data, dict):
        raise TypeError(f"{where} must be an object, got {type(data).__name__}")
    ints = {k: _field(data, k, (int,), where) for k in (
        "params", "trainable_params", "macs", "activation_memory", "input_grad_macs",
        "weight_grad_macs", "saved_memory", "bytes_moved")}
    layer = _field(data, "layer", (dict,), where)
    return (row_type or _row_type())(
        name=_field(data, "name", (str,), where), kind=_field(data, "kind", (str,), where),
        output_shape=_shape_field(data, "output_shape", where),
        receptive_field=_from_axes(data.get("receptive_field"), f"{where}.receptive_field"),
        rf_jump=_from_axes(data.get("rf_jump"), f"{where}.rf_jump"),
        rf_start=_from_axes(data.get("rf_start"), f"{where}.rf_start"),
        rf_range=_pair(data.get("rf_range"), f"{where}.rf_range", True),
        rf_units=_pair(data.get("rf_units"), f"{where}.rf_units", False),
        input_shape=_shape_field(data, "input_shape", where),
        layer=Layer.from_dict(layer) if layer else None,
        predicted_time=_field(data, "predicted_time", (int, float), where, True),
        bound=_field(data, "bound", (str,), where, True),
        batch_size=batch_size, **ints)


def _machine_to_dict(m):
    return None if m is None else {
        "peak_flops": m.peak_flops, "bandwidth": m.bandwidth,
        "n_threads": m.n_threads, "dtype": m.dtype, "description": m.description}


def _machine_from_dict(data):
    if data is None:
        return None
    if not isinstance(data, dict):
        raise TypeError(f"machine must be an object or null, got {type(data).__name__}")
    return Machine(**data)


def _fold(rows, depth, groups=None):
    """Rows with more than ``depth`` name components folded into one row per
    prefix of ``depth`` components (consecutive rows only): sums of the
    counts, the first row's input and the last row's output."""
    out, run, key = [], [], None

    def flush():
        if not run:
            return
        if len(run) == 1 and run[0].name == key:
            out.append(run[0])
        else:
            out.append(_subtotal(run, key, (groups or {}).get(key)))
        run.clear()

    for row in rows:
        parts = row.name.split(".")
        prefix = ".".join(parts[:depth]) if len(parts) > depth else None
        if prefix is None or prefix != key:
            flush()
        if prefix is None:
            key = None
            out.append(row)
        else:
            key = prefix
            run.append(row)
    flush()
    return tuple(out)


def _subtotal(run, name, layer=None, kind=None):
    last = run[-1]
    times = [r.predicted_time for r in run]
    time = None if any(t is None for t in times) else sum(times)
    bound = None
    if time is not None:
        compute = sum(r.predicted_time for r in run if r.bound == "compute")
        bound = "compute" if 2 * compute >= time else "memory"
    total = {k: sum(getattr(r, k) for r in run) for k in (
        "params", "trainable_params", "macs", "activation_memory", "input_grad_macs",
        "weight_grad_macs", "saved_memory", "bytes_moved")}
    return dataclasses.replace(
        last, name=name, kind=kind or (layer.kind if layer is not None else "block"),
        input_shape=run[0].input_shape, layer=layer, predicted_time=time, bound=bound,
        **total)

def _human(n, unit=""):
    for factor, prefix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= factor:
            return f"{n / factor:.2f} {prefix}{unit}"
    return f"{n} {unit}".rstrip()


def _bytes(n):
    for factor, prefix in ((2 ** 30, "GiB"), (2 ** 20, "MiB"), (2 ** 10, "KiB")):
        if n >= factor:
            return f"{n / factor:.2f} {prefix}"
    return f"{n} B"


def _seconds(t):
    if t is None:
        return "-"
    for factor, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "us")):
        if t >= factor:
            return f"{t / factor:.3g} {unit}"
    return f"{t / 1e-9:.3g} ns"


def _labelled(pairs):
    width = max(len(k) for k, _ in pairs)
    return [f"{k + ':':<{width + 1}} {v}" for k, v in pairs]


def _cell(v):
    if v is None:
        return "-"
    if isinstance(v, tuple):
        return "x".join(_cell(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


@dataclass(frozen=True)
class Summary:
    """Shapes and costs of every layer of a network.

    Attributes
    ----------
    name : str
    input_shape, output_shape : tuple of int
    rows : tuple of LayerRow
        One row per leaf layer and per merge (``add``/``cat``), in execution
        order; their ``params`` add up to ``total_params``.
    total_params, trainable_params : int
    total_macs, total_flops : int
        ``total_flops == 2 * total_macs``.
    receptive_field : int, tuple or None
        Of the last feature map with spatial dimensions (before flattening).
    convention : str
    dtype : str
    batch_size : int
    activation_memory : int
        Bytes of all layer outputs together (an upper bound on what a
        forward pass keeps for the backward pass; in-place layers share).
    parameter_memory : int
        Bytes of the parameters.
    total_input_grad_macs, total_weight_grad_macs : int
        Sums of the rows' backward multiply-adds, per sample;
        ``total_backward_macs`` is their sum.
    saved_memory : int
        Bytes the forward pass keeps for the backward pass (each tensor
        once), at the summary's batch size and dtype.
    itemsize : int
        Bytes per element of the dtype.
    inplace : bool
        Whether the activations were taken as in place.
    machine : Machine or None
        The machine the rows' predicted times are for.

    Notes
    -----
    See :ref:`theory-architectures` and :ref:`theory-training-costs`.

    Examples
    --------
    >>> s = summary([conv(6, 5), flatten(), linear(10)], (3, 32, 32))
    >>> s.output_shape, s.total_params
    ((10,), 47506)
    """

    name: str
    input_shape: tuple
    output_shape: tuple
    rows: tuple
    total_params: int
    trainable_params: int
    total_macs: int
    total_flops: int
    receptive_field: Any
    convention: str
    dtype: str
    batch_size: int
    activation_memory: int
    parameter_memory: int
    total_input_grad_macs: int = field(default=0, compare=False)
    total_weight_grad_macs: int = field(default=0, compare=False)
    saved_memory: int = field(default=0, compare=False)
    itemsize: int = field(default=4, compare=False)
    inplace: bool = field(default=False, compare=False)
    machine: Any = field(default=None, compare=False, repr=False)

    @property
    def non_trainable_params(self):
        return self.total_params - self.trainable_params

    @property
    def total_backward_macs(self):
        """Multiply-adds of the backward pass for one sample."""
        return self.total_input_grad_macs + self.total_weight_grad_macs

    @property
    def predicted_time(self):
        """Predicted seconds of a forward pass on ``machine`` (None without
        one): the sum of the rows' times."""
        if self.machine is None:
            return None
        return sum(r.predicted_time for r in self.rows)

    def training_memory(self, optimizer="sgd", *, breakdown=False):
        """Bytes a training step holds at its peak, at the summary's batch
        size and dtype.

        Parameters
        ----------
        optimizer : {'sgd', 'momentum', 'adam'}
            Plain SGD keeps no state, SGD with momentum one copy of the
            trainable parameters (the velocity), Adam two (the first and
            second moments).
        breakdown : bool
            Return a dict of the parts instead of their sum.

        Returns
        -------
        int or dict
            Parameters + gradients of the trainable parameters + optimizer
            state + the activations kept for the backward pass
            (:attr:`saved_memory`). With ``breakdown=True`` a dict with the
            keys ``parameters``, ``gradients``, ``optimizer_state``,
            ``saved_activations`` and ``total``.

        Raises
        ------
        ValueError
            For an unknown optimizer, listing the known ones.

        Notes
        -----
        Derived in :ref:`theory-training-costs`.

        The transient tensors of the backward pass (the gradient flowing
        through the network, at most about two activations at a time) and
        the framework's workspace are not counted.

        Examples
        --------
        >>> s = summary([conv(8, 3), relu(), flatten(), linear(10)], (1, 8, 8))
        >>> s.total_params, s.saved_memory
        (2970, 1408)
        >>> s.training_memory("adam", breakdown=True)["optimizer_state"]
        23760
        """
        optimizer = check_optimizer(optimizer)
        params = self.parameter_memory
        grads = self.trainable_params * self.itemsize
        state = OPTIMIZER_STATES[optimizer] * grads
        parts = {"parameters": params, "gradients": grads,
                 "optimizer_state": state, "saved_activations": self.saved_memory}
        parts["total"] = sum(parts.values())
        return parts if breakdown else parts["total"]

    def _header(self):
        return (f"{self.name}: input {_shape_str(self.input_shape)}, output "
                f"{_shape_str(self.output_shape)} ({self.dtype}, batch "
                f"{self.batch_size}, {self.convention} MAC convention)")

    def _totals(self):
        return [
            ("Total params", _fmt(self.total_params)),
            ("Trainable params", _fmt(self.trainable_params)),
            ("Non-trainable params", _fmt(self.non_trainable_params)),
            ("Total MACs", f"{_fmt(self.total_macs)} ({_human(self.total_macs)})"),
            ("Total FLOPs", f"{_fmt(self.total_flops)} ({_human(self.total_flops)})"),
            ("Receptive field", _cell(self.receptive_field)),
            ("Activation memory", _bytes(self.activation_memory)),
            ("Parameter memory", _bytes(self.parameter_memory)),
        ]

    _COLUMNS = ("Layer", "Kind", "Output shape", "Params", "MACs", "RF", "Memory")

    @staticmethod
    def _row_cells(r):
        return (r.name, r.kind, _cell(r.output_shape), _fmt(r.params),
                _fmt(r.macs), _cell(r.receptive_field), _bytes(r.activation_memory))

    def _cells(self, subtotals=False):
        if not subtotals:
            return [self._row_cells(r) for r in self.rows]
        cells, run = [], []
        for i, r in enumerate(self.rows):
            cells.append(self._row_cells(r))
            run.append(r)
            stage = r.name.split(".")[0]
            following = self.rows[i + 1].name.split(".")[0] if i + 1 < len(self.rows) \
                else None
            if following != stage:
                # a stage that is a block of several rows (not a layer named
                # like the stage, with rows named after it)
                if len(run) > 1 and all(x.name != stage for x in run) \
                        and len(self.stages()) > 1:
                    cells.append(self._row_cells(
                        _subtotal(run, f"{stage} (total)", kind="subtotal")))
                run = []
        return cells

    def stages(self):
        """The top-level stages: runs of rows whose names share their first
        component (``layer1`` for ``layer1.0.conv1``), in order.

        Returns
        -------
        list of (str, tuple of LayerRow)

        Notes
        -----
        See :ref:`network-files`.

        Examples
        --------
        >>> [name for name, rows in summary("resnet18").stages()][:6]
        ['conv1', 'bn1', 'relu', 'maxpool', 'layer1', 'layer2']
        """
        stages = []
        for r in self.rows:
            stage = r.name.split(".")[0]
            if stages and stages[-1][0] == stage:
                stages[-1][1].append(r)
            else:
                stages.append((stage, [r]))
        return [(name, tuple(rows)) for name, rows in stages]

    def _table(self, columns, cells, right):
        widths = [max([len(h)] + [len(row[i]) for row in cells])
                  for i, h in enumerate(columns)]

        def line(values):
            return "  ".join(v.rjust(w) if i in right else v.ljust(w)
                             for i, (v, w) in enumerate(zip(values, widths))).rstrip()

        rule = "-" * len(line(columns))
        return [rule, line(columns), rule] + [line(c) for c in cells] + [rule]

    @staticmethod
    def _md_table(columns, cells, right):
        out = ["| " + " | ".join(columns) + " |",
               "|" + "|".join("---:" if i in right else "---"
                              for i in range(len(columns))) + "|"]
        out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"
                for row in cells]
        return out

    # training ------------------------------------------------------------
    _TRAIN_COLUMNS = ("Layer", "Kind", "Input grad MACs", "Weight grad MACs",
                      "Saved memory")

    def _train_cells(self):
        return [(r.name, r.kind, _fmt(r.input_grad_macs), _fmt(r.weight_grad_macs),
                 _bytes(r.saved_memory)) for r in self.rows]

    def _train_totals(self, optimizer):
        parts = self.training_memory(optimizer, breakdown=True)
        ratio = self.total_backward_macs / self.total_macs if self.total_macs else 0
        return [
            ("Backward MACs", f"{_fmt(self.total_backward_macs)} "
                              f"({_human(self.total_backward_macs)}, "
                              f"{ratio:.2f}x the forward pass)"),
            ("Backward FLOPs", f"{_fmt(2 * self.total_backward_macs)} "
                               f"({_human(2 * self.total_backward_macs)})"),
            ("Parameters", _bytes(parts["parameters"])),
            ("Gradients", _bytes(parts["gradients"])),
            (f"Optimizer state ({optimizer})", _bytes(parts["optimizer_state"])),
            ("Saved activations", _bytes(parts["saved_activations"])
             + (" (in-place activations)" if self.inplace else "")),
            ("Training memory", _bytes(parts["total"])),
        ]

    # roofline ------------------------------------------------------------
    _ROOF_COLUMNS = ("Layer", "Kind", "FLOPs", "Bytes moved", "FLOP/byte",
                     "Time", "Bound")

    def _roof_cells(self):
        return [(r.name, r.kind, _human(2 * r.macs * self.batch_size),
                 _bytes(r.bytes_moved), f"{r.arithmetic_intensity:.1f}",
                 _seconds(r.predicted_time), r.bound or "-") for r in self.rows]

    def _roof_totals(self):
        m = self.machine
        compute = sum(r.predicted_time for r in self.rows if r.bound == "compute")
        return [
            ("Machine", f"{m.peak_flops / 1e9:.1f} GFLOP/s, "
                        f"{m.bandwidth / 1e9:.1f} GB/s, ridge at "
                        f"{m.ridge:.1f} FLOP/byte"),
            ("Predicted time", f"{_seconds(self.predicted_time)} for a forward "
                               f"pass of batch {self.batch_size}"),
            ("Compute-bound share", f"{compute / self.predicted_time:.0%}"
             if self.predicted_time else "-"),
        ]

    def to_text(self, training=False, optimizer="sgd", *, subtotals=True):
        """The table and totals as text; ``str(summary)`` is ``to_text()``.

        Parameters
        ----------
        training : bool
            Add a table of the backward pass (gradient MACs and memory kept
            for it, per layer) and the memory a training step takes.
        optimizer : {'sgd', 'momentum', 'adam'}
            For the optimizer state in the training table.
        subtotals : bool
            After the rows of each top-level block of several rows (see
            :meth:`stages`), a row ``<stage> (total)`` of kind
            ``subtotal`` with the stage's parameters, MACs and memory, its
            output shape and receptive field.

        Notes
        -----
        See :ref:`theory-training-costs`.

        A summary made with a ``machine`` also shows the roofline table.

        Examples
        --------
        >>> text = summary("lenet5").to_text(training=True, optimizer="adam")
        >>> "Optimizer state (adam)" in text
        True
        """
        optimizer = check_optimizer(optimizer)
        right = {3, 4, 5, 6}
        out = [self._header()] + self._table(self._COLUMNS, self._cells(subtotals),
                                             right)
        out += _labelled(self._totals())
        if training:
            out += ["", "Training (backward pass, per sample; memory at batch "
                        f"{self.batch_size})"]
            out += self._table(self._TRAIN_COLUMNS, self._train_cells(), {2, 3, 4})
            out += _labelled(self._train_totals(optimizer))
        if self.machine is not None:
            out += ["", f"Roofline (forward pass, batch {self.batch_size})"]
            out += self._table(self._ROOF_COLUMNS, self._roof_cells(), {2, 3, 4, 5})
            out += _labelled(self._roof_totals())
        return "\n".join(out)

    def __str__(self):
        return self.to_text()

    def __repr__(self):
        return (f"Summary({self.name!r}, params={self.total_params:,}, "
                f"macs={self.total_macs:,}, rows={len(self.rows)})")

    def to_markdown(self, training=False, optimizer="sgd", *, subtotals=True):
        """The table and totals as GitHub-flavoured Markdown (``training``,
        ``optimizer`` and ``subtotals`` as in :meth:`to_text`; the subtotal
        rows are in bold)."""
        optimizer = check_optimizer(optimizer)
        out = [f"**{self._header()}**", ""]
        cells = [tuple(f"**{c}**" for c in row) if row[1] == "subtotal" else row
                 for row in self._cells(subtotals)]
        out += self._md_table(self._COLUMNS, cells, {3, 4, 5, 6})
        out += [""] + [f"- {k}: {v}" for k, v in self._totals()]
        if training:
            out += ["", "**Training** (backward pass, per sample; memory at batch "
                        f"{self.batch_size})", ""]
            out += self._md_table(self._TRAIN_COLUMNS, self._train_cells(), {2, 3, 4})
            out += [""] + [f"- {k}: {v}" for k, v in self._train_totals(optimizer)]
        if self.machine is not None:
            out += ["", f"**Roofline** (forward pass, batch {self.batch_size})", ""]
            out += self._md_table(self._ROOF_COLUMNS, self._roof_cells(),
                                  {2, 3, 4, 5})
            out += [""] + [f"- {k}: {v}" for k, v in self._roof_totals()]
        return "\n".join(out) + "\n"

    def to_csv(self):
        """One CSV line per row, raw numbers, shapes written as ``64x56x56``
        (the backward pass's and the roofline's columns come last)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["name", "kind", "output_shape", "params",
                         "trainable_params", "macs", "receptive_field",
                         "rf_jump", "rf_start", "activation_memory",
                         "flops", "input_grad_macs", "weight_grad_macs",
                         "saved_memory", "bytes_moved"])
        for r in self.rows:
            writer.writerow([r.name, r.kind, _cell(r.output_shape), r.params,
                             r.trainable_params, r.macs, _cell(r.receptive_field),
                             _cell(r.rf_jump), _cell(r.rf_start),
                             r.activation_memory, r.flops, r.input_grad_macs,
                             r.weight_grad_macs, r.saved_memory, r.bytes_moved])
        return buf.getvalue()

    def to_dict(self):
        """Everything as plain lists, dicts, strings and numbers.

        The schema is stable and documented in :ref:`summary-schema`: each
        field has one type (shapes and receptive fields are lists, one entry
        per axis); :meth:`from_dict` reads it back to an equal summary.

        Returns
        -------
        dict

        Examples
        --------
        >>> data = summary("lenet5").to_dict()
        >>> data["receptive_field"], data["layers"][0]["receptive_field"]
        ([32, 32], [5, 5])
        >>> Summary.from_dict(data) == summary("lenet5")
        True
        """
        n = _spatial_axes(self.input_shape)
        return {
            "format": SUMMARY_FORMAT, "version": SUMMARY_VERSION,
            "name": self.name, "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "convention": self.convention, "dtype": self.dtype,
            "itemsize": self.itemsize,
            "batch_size": self.batch_size, "inplace": self.inplace,
            "total_params": self.total_params,
            "trainable_params": self.trainable_params,
            "non_trainable_params": self.non_trainable_params,
            "total_macs": self.total_macs, "total_flops": self.total_flops,
            "receptive_field": _axes(self.receptive_field, n),
            "activation_memory": self.activation_memory,
            "parameter_memory": self.parameter_memory,
            "total_input_grad_macs": self.total_input_grad_macs,
            "total_weight_grad_macs": self.total_weight_grad_macs,
            "total_backward_macs": self.total_backward_macs,
            "saved_memory": self.saved_memory,
            "training_memory": {opt: self.training_memory(opt)
                                for opt in OPTIMIZER_STATES},
            "predicted_time": self.predicted_time,
            "machine": _machine_to_dict(self.machine),
            "layers": [r.to_dict() for r in self.rows],
        }

    @classmethod
    def from_dict(cls, data):
        """The :class:`Summary` of a dict written by :meth:`to_dict` (or the
        JSON of :meth:`to_json`, loaded).

        Parameters
        ----------
        data : dict

        Returns
        -------
        Summary
            Equal to the summary that wrote ``data``, every field included.
            The fields derived from others (``non_trainable_params``,
            ``total_backward_macs``, ``training_memory``, the rows' ``flops``,
            ...) are not read.

        Raises
        ------
        ValueError, TypeError
            For another format or a newer version, a missing field or a field
            of the wrong type (naming it).

        Notes
        -----
        See :ref:`summary-schema`.

        Examples
        --------
        >>> import json
        >>> s = summary("resnet18", depth=1)
        >>> Summary.from_dict(json.loads(s.to_json())).rows == s.rows
        True
        """
        if not isinstance(data, dict):
            raise TypeError(f"a summary must be an object, got {type(data).__name__}")
        if data.get("format", SUMMARY_FORMAT) != SUMMARY_FORMAT:
            raise ValueError(f"format is {data['format']!r}, expected "
                             f"{SUMMARY_FORMAT!r}")
        version = data.get("version", SUMMARY_VERSION)
        if not isinstance(version, int) or version > SUMMARY_VERSION:
            raise ValueError(f"version {version!r} is not one this pyconvnet reads "
                             f"(up to {SUMMARY_VERSION})")
        where = "summary"
        batch = _field(data, "batch_size", (int,), where)
        layers = _field(data, "layers", (list,), where)
        rows = tuple(_row_from_dict(r, batch, f"layers[{i}]")
                     for i, r in enumerate(layers))
        ints = {k: _field(data, k, (int,), where) for k in (
            "total_params", "trainable_params", "total_macs", "total_flops",
            "activation_memory", "parameter_memory", "total_input_grad_macs",
            "total_weight_grad_macs", "saved_memory", "itemsize")}
        return cls(name=_field(data, "name", (str,), where),
                   input_shape=tuple(_field(data, "input_shape", (list,), where)),
                   output_shape=tuple(_field(data, "output_shape", (list,), where)),
                   rows=rows,
                   receptive_field=_from_axes(data.get("receptive_field"),
                                              "receptive_field"),
                   convention=_field(data, "convention", (str,), where),
                   dtype=_field(data, "dtype", (str,), where), batch_size=batch,
                   inplace=_field(data, "inplace", (bool,), where),
                   machine=_machine_from_dict(data.get("machine")), **ints)

    def to_json(self, indent=2):
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=indent)
