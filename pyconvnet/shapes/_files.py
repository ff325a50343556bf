"""Network files: JSON and TOML documents that hold a layer spec and,
optionally, its input shape (:ref:`network-files`); ONNX files are read by
``_onnx``.

A network document is an object with these fields::

    format       "pyconvnet.network" (optional)
    version      1 (optional)
    name         the network's name (optional)
    input_shape  [C, H, W] without the batch dimension (optional)
    layers       an array of layers: the network is their sequence
    network      one layer (of any kind): instead of ``layers``

Each layer is the dict form of :meth:`Layer.to_dict`. TOML has no null and
no mixed arrays; the writer here is only for this schema: scalars and arrays
of scalars as ``key = value``, nested layers as tables and arrays of tables.
"""
import json
import math
import os
import tomllib

from .. import _specs
from .._specio import layer_from_dict
from .._specs import Layer, as_layer
from ._costs import parse_shape

__all__ = ["load_network", "save_network"]

FORMAT = "pyconvnet.network"
VERSION = 1
_FIELDS = ("format", "version", "name", "input_shape", "layers", "network")
_SUFFIXES = {".json": "json", ".toml": "toml", ".onnx": "onnx"}


class NetworkFileError(ValueError):
    """A network file that cannot be read: its path and why."""


# --------------------------------------------------------------------------
# documents
# --------------------------------------------------------------------------

def network_to_dict(layer, input_shape=None):
    """The network document of a layer tree (and an input shape)."""
    doc = {"format": FORMAT, "version": VERSION}
    if layer.kind == "sequential":
        if layer.name is not None:
            doc["name"] = layer.name
        if input_shape is not None:
            doc["input_shape"] = list(input_shape)
        doc["layers"] = [c.to_dict() for c in layer.children]
    else:
        if input_shape is not None:
            doc["input_shape"] = list(input_shape)
        doc["network"] = layer.to_dict()
    return doc


def network_from_dict(doc, where="the network file"):
    """(Layer, input shape or None) of a network document.

    A bare layer object or array, as older files hold, is read as the
    network without an input shape.
    """
    if isinstance(doc, list) or (isinstance(doc, dict) and ("kind" in doc or "type" in doc)):
        return layer_from_dict(_specs, doc), None
    if not isinstance(doc, dict):
        raise NetworkFileError(f"{where} must hold an object with 'layers' or "
                               f"'network', got {type(doc).__name__}")
    unknown = [k for k in doc if k not in _FIELDS]
    if unknown:
        raise NetworkFileError(f"{where}: unknown field {unknown[0]!r}; a network file "
                               f"has the fields " + ", ".join(_FIELDS))
    if doc.get("format", FORMAT) != FORMAT:
        raise NetworkFileError(f"{where}: format is {doc['format']!r}, expected "
                               f"{FORMAT!r}")
    version = doc.get("version", VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version > VERSION:
        raise NetworkFileError(f"{where}: version {version!r} is not one this "
                               f"pyconvnet reads (up to {VERSION})")
    if ("layers" in doc) == ("network" in doc):
        raise NetworkFileError(f"{where} needs exactly one of 'layers' (an array of "
                               f"layers) and 'network' (one layer)")
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        raise NetworkFileError(f"{where}: name must be a string, got {name!r}")
    shape = doc.get("input_shape")
    if shape is not None:
        if not isinstance(shape, list):
            raise NetworkFileError(f"{where}: input_shape must be an array of positive "
                                   f"integers such as [3, 224, 224], got {shape!r}")
        shape = parse_shape(shape)
    if "layers" in doc:
        layers = doc["layers"]
        if not isinstance(layers, list):
            raise NetworkFileError(f"{where}: 'layers' must be an array of layers, "
                                   f"got {type(layers).__name__}")
        children = [layer_from_dict(_specs, x, f"layers[{i}]")
                    for i, x in enumerate(layers)]
        layer = Layer("sequential", {}, tuple(children), name=name)
    else:
        layer = layer_from_dict(_specs, doc["network"], "network")
        if name is not None and layer.name is None:
            layer = Layer(layer.kind, layer.config, layer.children, name=name)
    return layer, shape


# --------------------------------------------------------------------------
# TOML, for this schema only
# --------------------------------------------------------------------------

def _toml_key(key):
    if key and all(c.isalnum() or c in "_-" for c in key) and key.isascii():
        return key
    return _toml_string(key)


def _toml_string(text):
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _toml_value(value, where):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        text = repr(value)
        return text if any(c in text for c in ".en") else text + ".0"
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v, where) for v in value) + "]"
    if value is None:
        raise ValueError(f"{where} is null, which TOML cannot write: save the "
                         f"network as JSON")
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v, where + '.' + k)}"
                               for k, v in value.items() if v is not None) + "}"
    raise TypeError(f"{where}: cannot write a {type(value).__name__} to TOML")


def _is_tables(value):
    return isinstance(value, list) and value and all(isinstance(v, dict) for v in value)


def _toml_table(table, path, lines):
    simple = [(k, v) for k, v in table.items()
              if not isinstance(v, dict) and not _is_tables(v)]
    nested = [(k, v) for k, v in table.items() if isinstance(v, dict) or _is_tables(v)]
    for key, value in simple:
        if value is None:       # null means the builder's default: leave it out
            continue
        lines.append(f"{_toml_key(key)} = {_toml_value(value, '.'.join(path + [key]))}")
    for key, value in nested:
        sub = path + [_toml_key(key)]
        if isinstance(value, dict):
            lines += ["", "[" + ".".join(sub) + "]"]
            _toml_table(value, sub, lines)
        else:
            for item in value:
                lines += ["", "[[" + ".".join(sub) + "]]"]
                _toml_table(item, sub, lines)


def dumps_toml(doc):
    """A network document as TOML text."""
    lines = []
    _toml_table(doc, [], lines)
    return "\n".join(lines).lstrip("\n") + "\n"


# --------------------------------------------------------------------------
# reading and writing files
# --------------------------------------------------------------------------

def is_network_path(model):
    """Whether ``model`` names a network file rather than a built-in network."""
    if isinstance(model, os.PathLike):
        return True
    if not isinstance(model, str):
        return False
    return os.path.splitext(model)[1].lower() in _SUFFIXES or os.path.isfile(model)


def _read_bytes(path):
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError as exc:
        raise NetworkFileError(f"cannot read the spec file {os.fspath(path)!r}: "
                               f"{exc.strerror}") from None


def _parse_text(data, kind, where):
    text = data.decode("utf-8")
    if kind == "json":
        return json.loads(text)
    return tomllib.loads(text)


def load_network(path):
    """Read a network file: JSON, TOML or ONNX.

    Parameters
    ----------
    path : str or path-like
        A ``.json`` or ``.toml`` network file (:ref:`network-files`) or an
        ``.onnx`` model (read with the optional ``onnx`` package). Another
        suffix is read as whichever of the three it parses as.

    Returns
    -------
    layer : Layer
    input_shape : tuple of int or None
        The shape the file carries (ONNX: the graph input's, without the
        batch dimension, when it is static), or None.

    Raises
    ------
    ValueError
        For a file that cannot be read, one that is neither JSON, TOML nor
        ONNX, and bad fields (naming the layer's path in the file).
    TypeError
        For a field of the wrong type.

    See Also
    --------
    save_network, summary

    Notes
    -----
    See :ref:`network-files`.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "net.toml")
    >>> save_network([conv(6, 5), relu(), max_pool(2)], path, (1, 32, 32))
    >>> layer, shape = load_network(path)
    >>> shape, summary(path).output_shape
    ((1, 32, 32), (6, 14, 14))
    """
    where = os.fspath(path)
    data = _read_bytes(path)
    kind = _SUFFIXES.get(os.path.splitext(where)[1].lower())
    if kind == "onnx":
        from ._onnx import onnx_to_layer
        return onnx_to_layer(data, where)
    tried = []
    for candidate in [kind] if kind else ["json", "toml", "onnx"]:
        if candidate == "onnx":
            why = _not_onnx(data)
            if why is None:
                from ._onnx import onnx_to_layer
                return onnx_to_layer(data, where)
            tried.append(f"ONNX: {why}")
            continue
        try:
            doc = _parse_text(data, candidate, where)
        except UnicodeDecodeError:
            tried.append(f"{candidate.upper()}: not UTF-8 text")
            continue
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
            tried.append(f"{candidate.upper()}: {exc}")
            continue
        try:
            return network_from_dict(doc, where)
        except (ValueError, TypeError) as exc:
            if str(exc).startswith(where):
                raise
            raise type(exc)(f"{where}: {exc}") from None
    if kind:
        raise NetworkFileError(f"{where} is not valid {kind.upper()}: "
                               + tried[0].split(": ", 1)[1])
    raise NetworkFileError(f"{where} is neither a JSON, a TOML nor an ONNX file ("
                           + "; ".join(tried) + ")")


def _not_onnx(data):
    """Why ``data`` is not read as an ONNX model, or None if it is one."""
    from ._onnx import parse_model
    try:
        parse_model(data)
    except ValueError as exc:
        return str(exc)
    return None


def save_network(model, path, input_shape=None):
    """Write a network file: JSON or TOML, chosen by the suffix.

    Parameters
    ----------
    model : spec
        Anything :func:`as_layer` reads.
    path : str or path-like
        Ends in ``.json`` or ``.toml``.
    input_shape : tuple of int, str or None
        Stored in the file, so that :func:`summary` and ``pyconvnet
        summary`` need no input shape.

    Raises
    ------
    ValueError
        For another suffix, or a field TOML cannot hold (a ``None`` inside
        an adaptive pooling's ``output_size``: use JSON).

    See Also
    --------
    load_network

    Notes
    -----
    See :ref:`network-files`.

    Reading the file back gives an equal :class:`Layer`.

    Examples
    --------
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "net.json")
    >>> save_network([conv(6, 5, name="c1"), relu()], path, "1x32x32")
    >>> summary(path).rows[0].name
    'c1'
    """
    layer = as_layer(model)
    shape = None if input_shape is None else parse_shape(input_shape)
    kind = _SUFFIXES.get(os.path.splitext(os.fspath(path))[1].lower())
    if kind not in ("json", "toml"):
        raise ValueError(f"a network file ends in .json or .toml, got "
                         f"{os.fspath(path)!r}")
    doc = network_to_dict(layer, shape)
    text = json.dumps(doc, indent=2) + "\n" if kind == "json" else dumps_toml(doc)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
