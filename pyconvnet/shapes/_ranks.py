"""The input rank a network takes: built-in networks from their default
input shape, user networks from the first layer whose arguments fix the
number of spatial dimensions (a kernel of two sizes, a bilinear resize, a
pixel shuffle, ...). A shape of another rank would be read with its first
axis as the channels and run as a network of another rank, so it is refused
with a message that says so."""
__all__ = ["check_input_rank", "spec_rank"]

_DIMS = {1: "1-D (channels, length)", 2: "2-D (channels, height, width)",
         3: "3-D (channels, depth, height, width)"}
_WINDOWS = ("conv", "conv_transpose", "max_pool", "avg_pool", "subsampling", "window")
_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}


def _tuple_rank(cfg, keys):
    for key in keys:
        v = cfg.get(key)
        if isinstance(v, tuple) and len(v) > 1:
            return len(v), f"{key} {v}"
    return None


def _leaf_rank(layer):
    """(rank, why) a leaf fixes, None if it fixes none, or 'stop' when the
    spatial layout ends there."""
    kind, cfg = layer.kind, layer.config
    if kind in ("flatten", "linear", "rbf", "reshape"):
        return "stop"
    if kind in _WINDOWS:
        return _tuple_rank(cfg, ("kernel_size", "stride", "padding", "dilation",
                                 "output_padding"))
    if kind in ("adaptive_avg_pool", "adaptive_max_pool"):
        return _tuple_rank(cfg, ("output_size",))
    if kind == "upsample":
        if cfg["mode"] in _MODES:
            return _MODES[cfg["mode"]], f"mode {cfg['mode']!r}"
        return _tuple_rank(cfg, ("size", "scale_factor"))
    if kind in ("pixel_shuffle", "pixel_unshuffle"):
        return 2, kind
    if kind == "pad":
        return _tuple_rank(cfg, ("padding",))
    if kind == "crop":
        return _tuple_rank(cfg, ("size", "offset"))
    return None


def spec_rank(layer, path=""):
    """(spatial rank, layer path, layer kind, why) of the first layer of
    ``layer`` that fixes its rank, None when none does, or ``"stop"`` when
    the layout ends first."""
    kind = layer.kind
    if kind == "node":
        return spec_rank(layer.children[0], path)
    if kind in ("sequential", "residual", "concat", "dense_block", "graph"):
        found = None
        for i, child in enumerate(layer.children):
            if child is None:
                continue
            name = child.name or (str(i) if kind == "sequential" else "")
            sub = spec_rank(child, f"{path}.{name}".strip(".") if name else path)
            if sub == "stop":
                # in a sequence nothing after this reads the input's layout;
                # branches and graph nodes run side by side: look at the others
                if kind in ("sequential", "dense_block"):
                    return found or "stop"
                continue
            if sub is not None:
                return sub
        return found
    got = _leaf_rank(layer)
    if got is None or got == "stop":
        return got
    return (got[0], path, kind, got[1])


def check_input_rank(layer, shape, name, default=None):
    """Raise a ValueError when ``shape`` has another rank than the network
    takes (from ``default``, a built-in network's default input shape, or
    from the spec)."""
    if default is not None:
        if len(shape) == len(default):
            return
        want = len(default) - 1
        example, where = f" such as {default}", ""
    else:
        found = spec_rank(layer)
        if not isinstance(found, tuple) or len(shape) < 2 or found[0] == len(shape) - 1:
            return
        want, at, kind, why = found
        example = ""
        article = "an" if kind[0] in "aeiou" else "a"
        where = (f" (its first {want}-D layer is '{at or kind}', {article} {kind} "
                 f"with {why})")
    dims = _DIMS.get(want, f"{want}-D")
    hint = ""
    if len(shape) == want:
        channels = default[0] if default is not None else "C"
        hint = (f"; the channel axis is missing: try "
                f"({channels}, {', '.join(map(str, shape))})")
    raise ValueError(f"{name} takes a {dims} input{example}{where}, got "
                     f"{tuple(shape)}{hint}")
