"""Parameter counts, multiply-accumulates and memory of single layers."""
import math
import numbers
import re

from .._validation import check_bool, check_groups, check_int, check_sizes

__all__ = [
    "activation_memory",
    "conv_flops",
    "conv_macs",
    "conv_params",
    "dtype_size",
    "linear_macs",
    "linear_params",
    "parse_shape",
]

def conv_params(in_channels, out_channels, kernel_size, groups=1, bias=True):
    """Number of learnable parameters of a convolution.

    Parameters
    ----------
    in_channels, out_channels : int
        Channel counts, both divisible by ``groups``.
    kernel_size : int or tuple of int
        An int ``k`` means a ``k x k`` kernel (2-D); pass a tuple for other
        ranks, e.g. ``(k,)`` for 1-D or ``(k, k, k)`` for 3-D.
    groups : int
        Each group maps ``in_channels/groups`` inputs to
        ``out_channels/groups`` outputs.
    bias : bool

    Returns
    -------
    int

    Raises
    ------
    TypeError, ValueError
        On non-int or non-positive arguments, or channels not divisible by
        ``groups``.

    See Also
    --------
    conv_macs

    Notes
    -----
    Derived in :ref:`theory-parameter-count`.

    .. math:: C_{out} \\cdot \\frac{C_{in}}{g} \\cdot \\prod k + C_{out}
              [\\text{bias}]

    Examples
    --------
    The cs231n example, ten 5x5 filters over a 3-channel input:

    >>> conv_params(3, 10, 5)
    760
    >>> conv_params(256, 256, 3, bias=False)
    589824
    >>> conv_params(32, 32, 3, groups=32, bias=False)    # depthwise
    288
    """
    cin = check_int(in_channels, "in_channels", 1)
    cout = check_int(out_channels, "out_channels", 1)
    g = check_int(groups, "groups", 1)
    check_bool(bias, "bias")
    check_groups(cin, cout, g)
    k = check_sizes(kernel_size, "kernel_size", 1)
    kvol = math.prod(k) if isinstance(k, tuple) else k * k
    return cout * (cin // g) * kvol + (cout if bias else 0)


def conv_macs(in_channels, out_channels, kernel_size, output_size, groups=1):
    """Multiply-accumulates of a convolution producing ``output_size``.

    Parameters
    ----------
    in_channels, out_channels, kernel_size, groups
        As in :func:`conv_params`.
    output_size : int or tuple of int
        Spatial size of the output: an int ``n`` means ``n x n``; pass a
        tuple for other ranks.

    Returns
    -------
    int

    Raises
    ------
    TypeError, ValueError
        As :func:`conv_params`.

    See Also
    --------
    conv_params, conv_flops

    Notes
    -----
    Derived in :ref:`theory-parameter-count`.

    Each output element is a dot product of length :math:`C_{in}/g \\cdot
    \\prod k`, so

    .. math:: \\text{MACs} = C_{out} \\prod n_{out} \\cdot \\frac{C_{in}}{g}
              \\prod k

    Bias additions are not counted (the torchvision/fvcore convention).

    Examples
    --------
    >>> conv_macs(3, 64, 7, 112)     # ResNet's first convolution
    118013952
    """
    weights = conv_params(in_channels, out_channels, kernel_size, groups,
                          bias=False)
    out = check_sizes(output_size, "output_size", 1)
    positions = math.prod(out) if isinstance(out, tuple) else out * out
    return weights * positions


def conv_flops(in_channels, out_channels, kernel_size, output_size, groups=1):
    """Floating-point operations of a convolution: ``2 * conv_macs(...)``.

    Notes
    -----
    Derived in :ref:`theory-parameter-count`.

    Examples
    --------
    >>> conv_flops(3, 10, 5, 32)      # 750 weights at 32*32 positions, x2
    1536000
    """
    return 2 * conv_macs(in_channels, out_channels, kernel_size, output_size,
                         groups)


def linear_params(in_features, out_features, bias=True):
    """Parameters of a fully connected layer: ``in * out (+ out)``.

    Notes
    -----
    Derived in :ref:`theory-parameter-count`.

    A linear layer is a convolution whose kernel covers the whole input.

    Examples
    --------
    >>> linear_params(9216, 4096)
    37752832
    """
    fin = check_int(in_features, "in_features", 1)
    fout = check_int(out_features, "out_features", 1)
    check_bool(bias, "bias")
    return fin * fout + (fout if bias else 0)


def linear_macs(in_features, out_features):
    """Multiply-accumulates of a fully connected layer on one vector.

    Notes
    -----
    Derived in :ref:`theory-parameter-count`.

    A linear layer is a convolution whose kernel covers the whole input.

    Examples
    --------
    >>> linear_macs(512, 1000)
    512000
    """
    return linear_params(in_features, out_features, bias=False)


_DTYPE_SIZES = {
    "bool": 1, "int8": 1, "uint8": 1, "float8": 1,
    "int16": 2, "uint16": 2, "float16": 2, "half": 2, "bfloat16": 2,
    "int32": 4, "uint32": 4, "float32": 4, "float": 4, "single": 4,
    "int64": 8, "uint64": 8, "float64": 8, "double": 8, "long": 8,
}


def dtype_size(dtype):
    """Bytes per element of ``dtype``.

    Parameters
    ----------
    dtype : str, int or dtype-like
        A name such as ``"float32"``, ``"float16"`` or ``"bfloat16"``
        (a ``"torch."`` prefix is ignored), a byte count, or any object with
        an integer ``itemsize`` (NumPy and PyTorch dtypes).

    Returns
    -------
    int

    Raises
    ------
    TypeError, ValueError
        For anything else, listing the known names.

    Notes
    -----
    See :ref:`theory-parameter-count`.

    Examples
    --------
    >>> dtype_size("float32"), dtype_size("bfloat16"), dtype_size(8)
    (4, 2, 8)
    """
    if isinstance(dtype, numbers.Integral) and not isinstance(dtype, bool):
        return check_int(dtype, "dtype (bytes per element)", 1)
    itemsize = getattr(dtype, "itemsize", None)
    if isinstance(itemsize, numbers.Integral) and not isinstance(itemsize, bool):
        return int(itemsize)
    name = dtype if isinstance(dtype, str) else getattr(dtype, "__name__", None)
    if isinstance(name, str):
        key = name.lower().strip()
        key = key[len("torch."):] if key.startswith("torch.") else key
        if key in _DTYPE_SIZES:
            return _DTYPE_SIZES[key]
        raise ValueError(f"unknown dtype {dtype!r}; known names: "
                         + ", ".join(sorted(_DTYPE_SIZES)))
    raise TypeError(f"dtype must be a name, a byte count or have an itemsize, "
                    f"got {type(dtype).__name__}")


def _dtype_name(dtype):
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, numbers.Integral):
        return f"{int(dtype)}-byte"
    name = getattr(dtype, "name", None) or getattr(dtype, "__name__", None)
    return name if isinstance(name, str) else str(dtype)


def activation_memory(shape, dtype="float32", batch_size=1):
    """Bytes needed to store a tensor of ``shape`` (per batch of ``batch_size``).

    Parameters
    ----------
    shape : int, tuple of int or str
        Shape without the batch dimension, e.g. ``(64, 112, 112)`` or
        ``"64x112x112"``.
    dtype : str, int or dtype-like
        See :func:`dtype_size`.
    batch_size : int

    Returns
    -------
    int

    Notes
    -----
    Derived in :ref:`theory-output-size`.

    Examples
    --------
    >>> activation_memory((64, 112, 112))
    3211264
    >>> activation_memory("3x224x224", dtype="float16", batch_size=32)
    9633792
    """
    shape = parse_shape(shape)
    batch = check_int(batch_size, "batch_size", 1)
    return math.prod(shape) * dtype_size(dtype) * batch


def parse_shape(shape, name="input_shape"):
    """Normalise a shape given as ``"3x224x224"``, an int or a sequence of ints.

    Notes
    -----
    See :ref:`theory-output-size`.

    Examples
    --------
    >>> parse_shape("3x224x224")
    (3, 224, 224)
    >>> parse_shape(784)
    (784,)
    """
    if isinstance(shape, str):
        parts = [p for p in re.split(r"[x×,*\s]+", shape.strip().lower()) if p]
        if not parts or not all(p.isdigit() for p in parts):
            raise ValueError(
                f"{name} must look like '3x224x224' (positive integers joined by"
                f" 'x'), got {shape!r}")
        shape = tuple(int(p) for p in parts)
    if isinstance(shape, (tuple, list)):
        if not shape:
            raise ValueError(f"{name} must have at least one dimension")
        return tuple(check_int(v, f"{name}[{i}]", 1) for i, v in enumerate(shape))
    return (check_int(shape, name, 1),)


# --------------------------------------------------------------------------
# comparisons
# --------------------------------------------------------------------------
