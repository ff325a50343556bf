"""LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998)."""
import numpy as np

from .._lenet5 import LENET5_C3_TABLE, lenet5_options
from ._module import Sequential
from .init import as_generator
from .layers import AvgPool2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, Subsampling, Tanh

__all__ = ["lenet5", "LENET5_C3_TABLE", "c3_connection_mask"]


def c3_connection_mask(table=LENET5_C3_TABLE, in_maps=6):
    """The ``(len(table), in_maps)`` 0/1 mask of a connection table.

    Notes
    -----
    See :ref:`theory-map-combinations` and :ref:`theory-lenet5`.

    Examples
    --------
    >>> m = c3_connection_mask()
    >>> m.shape, int(m.sum())
    ((16, 6), 60)
    """
    mask = np.zeros((len(table), in_maps), dtype=np.float32)
    for j, row in enumerate(table):
        mask[j, list(row)] = 1
    return mask


_ACTIVATIONS = ("tanh", "relu")


def lenet5(activation="tanh", pooling="avg", sparse_c3=None, num_classes=10, *,
           c3="full", output="linear", rng=0, dtype=np.float32, n_threads=None):
    """LeNet-5 for 1x32x32 inputs: C1-S2-C3-S4-C5-F6-output.

    ========  =========================================  ============
    layer     what                                       output
    ========  =========================================  ============
    c1        6 maps, 5x5 convolution                    6x28x28
    s2        2x2 pooling                                6x14x14
    c3        16 maps, 5x5 (optionally LeCun's table)    16x10x10
    s4        2x2 pooling                                16x5x5
    c5        120 maps, 5x5 convolution                  120x1x1
    f6        84 units, fully connected                  84
    output    ``num_classes`` units (logits)             10
    ========  =========================================  ============

    The options, their defaults and their checks are those of the spec
    :func:`pyconvnet.architectures.lenet5`, so that
    ``summary(lenet5(**options))`` and
    ``summary(architectures.lenet5(**options))`` agree layer for layer.
    Each convolution and F6 is followed by the activation; with LeNet's
    trainable ``"subsampling"`` the activation also follows each pooling
    layer, as in the paper. The output layer is linear (logits for
    :class:`~pyconvnet.nn.CrossEntropyLoss`) where LeCun used RBF units.

    Parameters
    ----------
    activation : {'tanh', 'relu'}, default 'tanh'
        tanh is LeCun's scaled :math:`1.7159 \\tanh(2x/3)`.
    pooling : {'avg', 'max', 'subsampling'}, default 'avg'
        Plain 2x2 average or max pooling, or the paper's subsampling with a
        trainable coefficient and bias per map.
    sparse_c3 : bool, optional
        The older name of ``c3``: True is ``c3='sparse'``.
    num_classes : int, default 10
    c3 : {'full', 'sparse'}, default 'full'
        ``'sparse'`` connects C3 to S2 by LeCun's Table I (60 of the 96 map
        pairs, :data:`LENET5_C3_TABLE`) through a connection mask that keeps
        the cut weights at zero.
    output : {'linear'}, default 'linear'
        Only the linear output layer can be trained here (the paper's RBF
        units exist as a spec: :func:`pyconvnet.architectures.lenet5`).
    rng : int, Generator or None
        Seed of the initial weights (Xavier uniform for tanh, He uniform
        for ReLU).
    dtype : float32 or float64
    n_threads : int, optional
        Threads of the convolution and pooling kernels.

    Returns
    -------
    Sequential
        Layers named ``c1, act1, s2, (act2,) c3, ...``.

    Notes
    -----
    See :ref:`theory-lenet5`.

    Trainable subsampling adds a coefficient and a bias per map to S2 (12
    parameters) and S4 (32): 61,750 parameters instead of 61,706 with plain
    pooling.

    Examples
    --------
    >>> import numpy as np
    >>> from pyconvnet.nn import lenet5
    >>> model = lenet5()
    >>> model.forward(np.zeros((2, 1, 32, 32), np.float32)).shape
    (2, 10)
    >>> model.n_params(), lenet5(pooling="subsampling").n_params()
    (61706, 61750)
    >>> lenet5(c3="sparse")["c3"].connection_table()[15]
    (0, 1, 2, 3, 4, 5)
    """
    options = lenet5_options(num_classes, activation, pooling, c3, output,
                              sparse_c3=sparse_c3)
    activation, pooling = options["activation"], options["pooling"]
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {activation!r}")
    if options["output"] != "linear":
        raise ValueError("output='rbf' exists only as a spec "
                         "(pyconvnet.architectures.lenet5): the model's output "
                         "layer is linear")
    rng = as_generator(rng)
    init = "xavier_uniform" if activation == "tanh" else "he_uniform"

    def act():
        # every activation follows a layer that does not keep its output,
        # so it may overwrite it
        return Tanh(1.7159, 2.0 / 3.0, inplace=True) if activation == "tanh" \
            else ReLU(inplace=True)

    def pool(channels):
        if pooling == "subsampling":
            return Subsampling(channels, 2, dtype=dtype, n_threads=n_threads)
        if pooling == "avg":
            return AvgPool2d(2, n_threads=n_threads)
        return MaxPool2d(2, n_threads=n_threads)

    conv = dict(init=init, rng=rng, dtype=dtype, n_threads=n_threads)
    layers = [("c1", Conv2d(1, 6, 5, **conv)), ("act1", act()), ("s2", pool(6))]
    if pooling == "subsampling":
        layers.append(("act2", act()))
    mask = c3_connection_mask() if options["c3"] == "sparse" else None
    layers += [("c3", Conv2d(6, 16, 5, mask=mask, **conv)), ("act3", act()),
               ("s4", pool(16))]
    if pooling == "subsampling":
        layers.append(("act4", act()))
    layers += [("c5", Conv2d(16, 120, 5, **conv)), ("act5", act()),
               ("flatten", Flatten()),
               ("f6", Linear(120, 84, init=init, rng=rng, dtype=dtype)), ("act6", act()),
               ("output", Linear(84, options["num_classes"], init=init, rng=rng,
                                 dtype=dtype))]
    return Sequential(*layers)
