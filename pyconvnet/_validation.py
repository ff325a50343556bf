"""Argument normalisation and checks shared by every public wrapper.

The compiled kernels run with bounds checking off, so everything they rely on
is established here first: dtypes, ranks, contiguity, sizes and thread counts.
Every error names the argument, by the public function's own parameter
name, and the rule it broke.

One answer to each question a wrapper asks of its arguments:

- integers (:func:`check_int`): Python and NumPy integers; bools and floats
  are refused, even when integral;
- booleans (:func:`check_bool`): ``True``/``False`` and ``numpy.bool_``
  (what comparisons of arrays return); ints such as ``0`` and ``1`` are
  refused;
- per-axis sizes (:func:`ntuple`): an int for every axis, or one per axis;
- padding (:func:`check_padding`): a non-negative int, one per axis, or the
  strings ``'valid'`` and ``'same'`` in any case (``"SAME"`` is ``'same'``);
- thread counts (:func:`check_n_threads`): None for OpenMP's maximum, a
  positive count, or a negative one counted down from that maximum.

This module loads no compiled code when imported, so that the pure-Python
calculators (:mod:`pyconvnet.shapes`) can use it without the kernels.
"""
import functools
import numbers
import operator

import numpy as np

__all__ = [
    "as_float_array",
    "check_bool",
    "check_choice",
    "check_groups",
    "check_int",
    "check_n_threads",
    "check_ndim",
    "check_padding",
    "check_sizes",
    "ntuple",
    "result_dtype",
]

PADDING_MODES = ("valid", "same")


def check_n_threads(n_threads=None):
    """Resolve ``n_threads`` to the number of OpenMP threads a kernel uses.

    Parameters
    ----------
    n_threads : int or None
        None uses every thread OpenMP offers (``omp_get_max_threads()``:
        all cores, or ``OMP_NUM_THREADS`` when set, or the limit set by
        threadpoolctl). A negative value counts down from that same number,
        as scikit-learn's ``n_threads`` does: -1 is the same as None, -2 one
        thread fewer, and so on (never fewer than one). 0 is an error.

    Returns
    -------
    int
        A positive thread count; always 1 in a build without OpenMP.
    """
    if n_threads is not None:
        if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral):
            raise TypeError(
                f"n_threads must be an int or None, got {type(n_threads).__name__}"
            )
        if n_threads == 0:
            raise ValueError("n_threads must not be 0: use None for all cores, "
                             "a positive count, or a negative one counted from the top")
    openmp = _openmp()
    if openmp is None:
        return 1
    if n_threads is not None and n_threads > 0:
        return int(n_threads)
    top = max(1, openmp())
    if n_threads is None:
        return top
    return max(1, top + 1 + int(n_threads))


@functools.lru_cache(maxsize=None)
def _openmp():
    """``omp_get_max_threads``, or None in a build without OpenMP. Imported
    on first use, not at the top, so that importing this module loads no
    compiled code (see the module notes)."""
    from ._ext._openmp_helpers import openmp_enabled, openmp_max_threads

    return openmp_max_threads if openmp_enabled() else None


def result_dtype(*dtypes):
    """The floating dtype a kernel computes in for inputs of these dtypes.

    float32 stays float32 (float16 is widened to float32), float64 stays
    float64, in either byte order; bools and integers are promoted to
    float64; a mix of float32 and float64 gives float64. Complex, object,
    string and extended precision dtypes are refused.
    """
    return _result_dtype(*dtypes)


@functools.lru_cache(maxsize=256)
def _result_dtype(*dtypes):
    out = np.float32
    for dtype in dtypes:
        dtype = np.dtype(dtype)
        # by kind and size, so that either byte order is accepted
        if (dtype.kind == "f" and dtype.itemsize == 8) or dtype.kind in "biu":
            out = np.float64
        elif dtype.kind == "f" and dtype.itemsize in (2, 4):
            pass
        elif dtype.kind == "f":
            raise TypeError(
                f"{dtype} is not supported: cast to float64 or float32 first")
        else:
            raise TypeError(f"dtype {dtype} is not supported: the input must be "
                            "real numbers (float32, float64, integer or bool)")
    return np.dtype(out)


def as_float_array(x, name, dtype=None):
    """Return ``x`` as a C-contiguous float32 or float64 ndarray.

    ``x`` is never modified: a copy is made whenever the dtype or the memory
    layout must change, and the kernels only read their inputs.

    Parameters
    ----------
    x : array_like
        The input.
    name : str
        The argument's name, for error messages.
    dtype : dtype, optional
        The dtype to convert to; by default the one :func:`result_dtype`
        picks for ``x`` alone.
    """
    if isinstance(x, np.ndarray):
        arr = x
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} must be array_like of real numbers: {exc}") from None
    try:
        natural = result_dtype(arr.dtype)
    except TypeError as exc:
        raise TypeError(f"{name}: {exc}") from None
    return np.ascontiguousarray(arr, dtype=natural if dtype is None else dtype)


def check_ndim(arr, name, allowed):
    """Raise a ValueError unless ``arr.ndim`` is one of ``allowed``."""
    if arr.ndim not in allowed:
        ranks = " or ".join(str(r) for r in allowed)
        raise ValueError(f"{name} must be {ranks}-dimensional, got {arr.ndim} "
                         f"dimension(s) with shape {arr.shape}")


def check_choice(value, name, choices):
    """Raise a ValueError unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        listed = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {listed}, got {value!r}")
    return value


def check_int(value, name, minimum=None):
    """Return ``value`` as a Python int, refusing bools, floats and values
    below ``minimum``.

    Python and NumPy integers are accepted; bools (Python's and NumPy's) are
    refused although they are integers, and so are floats with an integral
    value.

    Examples
    --------
    >>> check_int(np.int64(3), "stride", 1)
    3
    >>> check_int(0, "stride", 1)
    Traceback (most recent call last):
    ...
    ValueError: stride must be >= 1, got 0
    """
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an int, got {type(value).__name__} {value!r}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_bool(value, name):
    """Return ``value`` as a Python bool: ``True``, ``False`` or a
    ``numpy.bool_``; anything else (including 0 and 1) is a TypeError.

    Examples
    --------
    >>> check_bool(np.bool_(True), "ceil_mode")
    True
    """
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(
            f"{name} must be True or False ({name} must be a bool or numpy.bool_), "
            f"got {type(value).__name__} {value!r}")
    return bool(value)


def check_groups(in_channels, out_channels, groups):
    """Raise a ValueError unless both channel counts divide by ``groups``."""
    if in_channels % groups:
        raise ValueError(f"in_channels={in_channels} is not divisible by "
                         f"groups={groups}")
    if out_channels % groups:
        raise ValueError(f"out_channels={out_channels} is not divisible by "
                         f"groups={groups}")


def check_sizes(value, name, minimum=None):
    """Check an int or a sequence of ints, keeping its form (an int stays an
    int, a sequence becomes a tuple)."""
    if isinstance(value, (tuple, list)):
        if not value:
            raise ValueError(f"{name} must not be empty")
        return tuple(check_int(v, f"{name}[{i}]", minimum) for i, v in enumerate(value))
    return check_int(value, name, minimum)


def ntuple(value, n, name, minimum=None):
    """Expand an int, or check a sequence, into a tuple of ``n`` ints.

    Parameters
    ----------
    value : int or sequence of int
        One value for every dimension, or one per dimension (a sequence of
        one value also stands for every dimension).
    n : int
        The number of spatial dimensions.
    name : str
        The argument's name, for error messages.
    minimum : int, optional
        The smallest value allowed.
    """
    if isinstance(value, (tuple, list)):
        if len(value) == 1:
            value = tuple(value) * n
        if len(value) != n:
            raise ValueError(f"{name} must be an int or a sequence of {n} ints, "
                             f"got {len(value)} values: {tuple(value)} (the input "
                             f"has {n} spatial dimension{'s' if n != 1 else ''})")
        return tuple(check_int(v, name, minimum) for v in value)
    return (check_int(value, name, minimum),) * n


def check_padding(padding, name="padding", n=None):
    """Check a padding argument: a non-negative int, a sequence of them, or
    one of the strings ``'valid'`` and ``'same'`` in any case.

    Parameters
    ----------
    padding : int, sequence of int or str
    name : str
        The argument's name, for error messages.
    n : int, optional
        The number of spatial dimensions: when given, ints and sequences
        are expanded by :func:`ntuple`; otherwise their form is kept.

    Returns
    -------
    str, int or tuple of int
        The mode in lower case (``'valid'`` or ``'same'``), or the sizes.

    Examples
    --------
    >>> check_padding("SAME"), check_padding(1, n=2), check_padding([1, 2])
    ('same', (1, 1), (1, 2))
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in PADDING_MODES:
            raise ValueError(
                f"{name} must be one of 'valid', 'same', got {padding!r}: a padding "
                "is an int, a tuple of ints, or 'same' or 'valid' (in any case)")
        return mode
    if n is None:
        return check_sizes(padding, name, 0)
    return ntuple(padding, n, name, 0)
