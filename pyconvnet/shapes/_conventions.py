"""Which operations count as MACs: the two conventions of :func:`summary`
and presets that reproduce the figures other tools publish.

A rule set has one entry per switch:

``bias``
    One MAC per output element for the bias of convolutions and linear
    layers.
``batch_norm``
    MACs per element of a batch normalisation: 0, 1, or ``"affine"`` (2
    when it has a scale and shift, 1 otherwise, as fvcore and ptflops count).
``activations``
    One MAC per element of an activation.
``pooling``
    None, ``"window"`` (one per window element of each output, plus one for
    LeNet's coefficient) or ``"input"`` (one per input element, as ptflops
    counts); adaptive max pooling follows it too.
``adaptive_pooling``
    One MAC per input element of an adaptive average pooling.
``residual``
    One MAC per element of an element-wise join, per input after the first:
    residual additions, and the ``add`` and ``mul`` nodes of a graph.
``lrn``
    ``size`` MACs per element of a local response normalisation.
``norms``
    MACs per element of a group, layer or instance normalisation: 0, 1,
    ``"affine"`` (2 with a scale and shift, 1 without, as ptflops counts) or
    ``"stats"`` (5 with them, 4 without, as fvcore counts).
``upsample``
    None, ``"output"`` (one per output element, as ptflops counts) or
    ``"interpolation"`` (one per output element and tap: 1 for nearest, 2, 4
    or 8 for linear, bilinear and trilinear, as fvcore counts).

Convolutions and linear layers always count one MAC per weight use.
"""

__all__ = ["CONVENTIONS", "PRESETS", "count_rules"]

_NOTHING = dict(bias=False, batch_norm=0, activations=False, pooling=None,
                adaptive_pooling=False, residual=False, lrn=False, norms=0,
                upsample=None)

PRESETS = {
    # torchvision's "GFLOPS" column and FlopCounterMode's FLOPs / 2
    "torchvision": dict(_NOTHING),
    # every layer, one MAC per element (the package's own "full")
    "full": dict(bias=True, batch_norm=1, activations=True, pooling="window",
                 adaptive_pooling=True, residual=True, lrn=True, norms=1,
                 upsample="interpolation"),
    # fvcore's FlopCountAnalysis: matrix products without bias, batch norm
    # (2 per element with affine, in eval mode), adaptive average pooling
    "fvcore": dict(_NOTHING, batch_norm="affine", adaptive_pooling=True,
                   norms="stats", upsample="interpolation"),
    # ptflops' pytorch backend: biases, batch norm, activations and pooling
    # (one per input element); functional additions are not seen
    "ptflops": dict(bias=True, batch_norm="affine", activations=True,
                    pooling="input", adaptive_pooling=True, residual=False,
                    lrn=False, norms="affine", upsample="output"),
}


CONVENTIONS = ("torchvision", "full")


def count_rules(convention, count=None, preset=None):
    """The rule set of a convention, or of a preset when one is named, with
    ``count``'s switches overriding it."""
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {', '.join(CONVENTIONS)}, "
                         f"got {convention!r}")
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}, "
                         f"got {preset!r}")
    rules = dict(PRESETS[preset if preset is not None else convention])
    if count is not None and not isinstance(count, dict):
        raise TypeError(f"count must be a dict of switches, got "
                        f"{type(count).__name__}")
    for key, value in (count or {}).items():
        if key not in rules:
            raise ValueError(f"unknown counting switch {key!r}; known: "
                             + ", ".join(rules))
        rules[key] = value
    return rules
