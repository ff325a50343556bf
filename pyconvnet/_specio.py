"""Layer specs as plain data: ``Layer.to_dict`` and ``Layer.from_dict``.

The dict form is the one network files are written in (see
:ref:`network-files`): an object per layer with its ``kind``, its ``name``
when it has one, its constructor's arguments, and its children under
``layers`` (sequential, dense block), ``branches`` (concat), ``body`` and
``shortcut`` (residual), ``nodes`` (graph) or ``layer`` (a graph's node).
Inside a layer's arguments an array is a tuple
(``"kernel_size": [3, 5]``); an array where a layer is expected is a
sequence of layers. Reading goes through the builders of :mod:`._specs`, so
a bad field is refused with the builder's message and the path of the layer
in the file.

This module is below :mod:`._specs` (whose ``Layer.to_dict`` and
``Layer.from_dict`` call it): the builders are passed in as ``specs``, the
module that defines them.
"""
import inspect

__all__ = ["layer_from_dict", "layer_to_dict"]

# where the children of each composite are written
_CHILD_FIELDS = {"sequential": "layers", "dense_block": "layers", "concat": "branches",
                 "graph": "nodes"}
# fields a builder fills in itself, which it refuses when given this value
_DERIVED = {"upsample": {"align_corners": False}}
# fields stored under another name than the builder's argument
_RENAMED = {"pixel_shuffle": {"factor": "upscale_factor"},
            "pixel_unshuffle": {"factor": "downscale_factor"}}


def _value_to_data(value, layer_type):
    if isinstance(value, layer_type):
        return layer_to_dict(value)
    if isinstance(value, (tuple, list)):
        return [_value_to_data(v, layer_type) for v in value]
    return value


def layer_to_dict(layer):
    """The dict form of a :class:`Layer` tree (JSON- and TOML-ready)."""
    data = {"kind": layer.kind}
    if layer.name is not None:
        data["name"] = layer.name
    for key, value in layer.config.items():
        data[key] = _value_to_data(value, type(layer))
    if layer.kind == "residual":
        body, shortcut = layer.children
        data["body"] = layer_to_dict(body)
        if shortcut is not None:
            data["shortcut"] = layer_to_dict(shortcut)
    elif layer.kind == "node":
        data["layer"] = layer_to_dict(layer.children[0])
    elif layer.kind in _CHILD_FIELDS:
        data[_CHILD_FIELDS[layer.kind]] = [layer_to_dict(c) for c in layer.children]
    elif layer.children:
        data["children"] = [None if c is None else layer_to_dict(c)
                            for c in layer.children]
    return data


def _tuples(value):
    """JSON arrays inside a layer's arguments are tuples."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _child(specs, value, path):
    """A child spec: an object, an array (a sequence) or a kind string."""
    if isinstance(value, dict):
        return layer_from_dict(specs, value, path)
    if isinstance(value, list):
        return specs.sequential(*(_child(specs, v, f"{path}[{i}]")
                                  for i, v in enumerate(value)))
    if isinstance(value, str):
        return _at(path, value, lambda: specs.as_layer(value))
    raise TypeError(f"{path}: expected a layer (an object with 'kind'), an array "
                    f"of layers or a kind string, got {type(value).__name__}")


def _at(path, kind, build):
    try:
        return build()
    except (TypeError, ValueError) as exc:
        if str(exc).startswith(path):
            raise
        raise type(exc)(f"{path} ({kind}): {exc}") from None


def layer_from_dict(specs, data, path="network"):
    """A :class:`Layer` from its dict form (see :func:`layer_to_dict`), built
    with the builders of the module ``specs``.

    ``path`` names the layer in error messages (``network.layers[2].body``).
    """
    if isinstance(data, list):
        return _child(specs, data, path)
    if not isinstance(data, dict):
        raise TypeError(f"{path}: a layer must be an object with a 'kind' field, "
                        f"got {type(data).__name__} {data!r}")
    fields = dict(data)
    kind = fields.pop("kind", None)
    if kind is None:
        kind = fields.pop("type", None)
    if not isinstance(kind, str):
        raise ValueError(f"{path}: a layer needs a 'kind' string, got "
                         f"{'no kind' if kind is None else repr(kind)} in {data!r}")
    canon = _at(path, kind, lambda: specs._kind_key(kind))
    name = fields.pop("name", None)
    args = []
    if canon == "residual":
        if "body" not in fields:
            raise ValueError(f"{path} (residual): the 'body' field is missing")
        args = [_child(specs, fields.pop("body"), f"{path}.body")]
        shortcut = fields.pop("shortcut", None)
        args.append(None if shortcut is None
                    else _child(specs, shortcut, f"{path}.shortcut"))
        if "activation" in fields and fields["activation"] is not None:
            fields["activation"] = _child(specs, fields["activation"],
                                          f"{path}.activation")
    elif canon == "node":
        if "layer" not in fields:
            raise ValueError(f"{path} (node): the 'layer' field is missing")
        fields["layer"] = _child(specs, fields["layer"], f"{path}.layer")
    elif canon in _CHILD_FIELDS:
        key = _CHILD_FIELDS[canon]
        children = fields.pop(key, [])
        if not isinstance(children, list):
            raise TypeError(f"{path} ({canon}): '{key}' must be an array, got "
                            f"{type(children).__name__}")
        if canon == "graph":    # the entries are nodes: their kind goes without saying
            children = [dict(c, kind=c.get("kind", "node")) if isinstance(c, dict) else c
                        for c in children]
        args = [_child(specs, c, f"{path}.{key}[{i}]") for i, c in enumerate(children)]
    fields = {k: v if isinstance(v, specs.Layer) else _tuples(v)
              for k, v in fields.items()}
    for key, argument in _RENAMED.get(canon, {}).items():
        if key in fields and argument not in fields:
            fields[argument] = fields.pop(key)
    if canon in specs.ACTIVATIONS:
        build, accepted = (lambda **kw: specs.activation(canon, **kw)), {"name"}
    else:
        build = specs._CONSTRUCTORS[canon]
        accepted = {p.name for p in inspect.signature(build).parameters.values()
                    if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    derived = _DERIVED.get(canon, {})
    given = {k: v for k, v in fields.items() if k in accepted
             and not (k in derived and v == derived[k])}

    def unknown(key, config=()):
        known = sorted((accepted | set(config)) - {"name"})
        return ValueError(f"{path} ({canon}): unknown field {key!r} = {fields[key]!r}; "
                          f"a {canon} layer takes " + ", ".join(known))

    try:
        layer = _at(path, canon, lambda: build(*args, **given, name=name))
    except (TypeError, ValueError):
        extra = [k for k in fields if k not in accepted]
        if extra:       # a misspelt field explains the failure better
            raise unknown(extra[0]) from None
        raise
    # Fields the builder fixes (an average pool's dilation of 1) may be
    # written; anything else is an error rather than silently ignored.
    for key, value in fields.items():
        if (key not in accepted or key in derived) \
                and layer.config.get(key, _MISSING) != value:
            raise unknown(key, layer.config)
    return layer


_MISSING = object()
