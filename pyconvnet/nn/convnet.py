r"""The common convolutional network pattern as one call.

cs231n writes the most common architecture as

.. code-block:: text

    INPUT -> [[CONV -> RELU]*N -> POOL?]*M -> [FC -> RELU]*K -> FC -> SOFTMAX

:func:`conv_net` builds it as a :class:`~pyconvnet.nn.Sequential`, working
out the ``in_features`` of the first fully connected layer from the input
shape.
"""
import numpy as np

from ._module import Sequential
from .init import as_generator
from .layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU, Tanh

__all__ = ["conv_net"]

_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh}


def _blocks(conv):
    """``conv`` as a list of blocks, each a list of output channel counts."""
    if isinstance(conv, (int, np.integer)):
        conv = [[conv]]
    blocks = []
    for i, block in enumerate(conv):
        block = [block] if isinstance(block, (int, np.integer)) else list(block)
        if not block or not all(isinstance(c, (int, np.integer)) and not isinstance(c, bool)
                                and c >= 1 for c in block):
            raise ValueError(f"conv[{i}] must be a positive channel count or a non-empty "
                             f"list of them, got {block!r}")
        blocks.append([int(c) for c in block])
    return blocks


def conv_net(input_shape, conv=((32,),), pool=2, fc=(), n_classes=10, *, kernel_size=3,
             padding="same", activation="relu", rng=0, dtype=np.float32, n_threads=None):
    r"""``[(CONV-RELU)*N-POOL?]*M-(FC-RELU)*K-FC`` as a :class:`Sequential`.

    The softmax of the pattern is the loss's: train the logits with
    :class:`~pyconvnet.nn.CrossEntropyLoss` (or apply
    :func:`~pyconvnet.nn.softmax` to them for probabilities).

    Parameters
    ----------
    input_shape : tuple of int or str
        One input without the batch dimension, ``(C, H, W)`` (or
        ``"CxHxW"``).
    conv : list of (int or list of int)
        The ``M`` blocks: each block lists the output channels of its ``N``
        convolutions (an int is a block of one). Each convolution is
        followed by the activation.
    pool : int, None or list of (int or None)
        The 2x2 (``pool=2``) max pooling after each block; None for none, or
        one entry per block.
    fc : list of int
        Widths of the ``K`` hidden fully connected layers, each followed by
        the activation.
    n_classes : int
        Width of the last fully connected layer (the logits).
    kernel_size : int or tuple of int
        Of every convolution.
    padding : int, tuple of int or 'same'
        Of every convolution; ``'same'`` keeps the size, so that only the
        pooling layers shrink the maps.
    activation : {'relu', 'tanh'}
    rng : int, Generator or None
        Seed of the initial weights.
    dtype : float32 or float64
    n_threads : int, optional
        Threads of the convolution and pooling kernels.

    Returns
    -------
    Sequential
        Layers named ``conv{m}_{n}``, ``relu{m}_{n}`` (or ``tanh...``),
        ``pool{m}``, ``flatten``, ``fc{k}``, ``relu_fc{k}`` and ``fc{K+1}``
        (all counted from 1). :func:`pyconvnet.shapes.summary` describes it.

    Raises
    ------
    ValueError
        For an empty or non-positive block, a ``pool`` list of the wrong
        length, an unknown activation, or an input too small for the
        convolutions and poolings (naming the layer where the maps vanish).

    Notes
    -----
    Derived in :ref:`theory-architectures`.

    The in-features of the first fully connected layer are the size of the
    flattened output of the last block, computed by
    :func:`pyconvnet.shapes.summary` from the layers' own specs.

    Examples
    --------
    >>> from pyconvnet import nn
    >>> from pyconvnet.shapes import summary
    >>> model = nn.conv_net((3, 32, 32), conv=[[16, 16], [32]], pool=2, fc=[64],
    ...                     n_classes=10)
    >>> list(model.layers)                                   # doctest: +NORMALIZE_WHITESPACE
    ['conv1_1', 'relu1_1', 'conv1_2', 'relu1_2', 'pool1', 'conv2_1', 'relu2_1', 'pool2',
     'flatten', 'fc1', 'relu_fc1', 'fc2']
    >>> model["fc1"]
    Linear(2048, 64)
    >>> s = summary(model, (3, 32, 32))
    >>> s.output_shape, s.total_params == model.n_params()
    ((10,), True)
    """
    from .. import shapes
    from .._validation import check_int

    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(map(repr, _ACTIVATIONS))}, "
                         f"got {activation!r}")
    act = _ACTIVATIONS[activation]
    input_shape = shapes.parse_shape(input_shape)
    if len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape}")
    blocks = _blocks(conv)
    pools = list(pool) if isinstance(pool, (list, tuple)) else [pool] * len(blocks)
    if len(pools) != len(blocks):
        raise ValueError(f"pool has {len(pools)} entries for {len(blocks)} conv blocks")
    hidden = [check_int(w, f"fc[{k}]", 1) for k, w in enumerate(fc)]
    n_classes = check_int(n_classes, "n_classes", 1)
    gen = as_generator(rng)
    init = "he_uniform" if activation == "relu" else "xavier_uniform"

    layers = []
    channels = input_shape[0]
    for m, (block, p) in enumerate(zip(blocks, pools), start=1):
        for n, out in enumerate(block, start=1):
            layers.append((f"conv{m}_{n}", Conv2d(channels, out, kernel_size,
                                                   padding=padding, init=init, rng=gen,
                                                   dtype=dtype, n_threads=n_threads)))
            layers.append((f"{activation}{m}_{n}", act()))
            channels = out
        if p is not None:
            layers.append((f"pool{m}", MaxPool2d(p, n_threads=n_threads)))
    layers.append(("flatten", Flatten()))
    features = shapes.summary(Sequential(*layers), input_shape).output_shape[0]
    for k, width in enumerate(hidden, start=1):
        layers.append((f"fc{k}", Linear(features, width, init=init, rng=gen, dtype=dtype)))
        layers.append((f"{activation}_fc{k}", act()))
        features = width
    layers.append((f"fc{len(hidden) + 1}", Linear(features, n_classes, init=init, rng=gen,
                                                  dtype=dtype)))
    return Sequential(*layers)
