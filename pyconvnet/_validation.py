"""Argument normalisation and checks shared by every public wrapper.

The compiled kernels run with bounds checking off, so everything they rely on
is established here first: dtypes, ranks, contiguity, sizes and thread counts.
Every error names the argument and the rule it broke.
"""
import numbers
import operator
import os

import numpy as np

from ._ext._openmp_helpers import openmp_enabled, openmp_max_threads

__all__ = [
    "as_float_array",
    "check_choice",
    "check_int",
    "check_n_threads",
    "check_ndim",
    "ntuple",
    "result_dtype",
]


def check_n_threads(n_threads=None):
    """Resolve ``n_threads`` to the number of OpenMP threads a kernel uses.

    Parameters
    ----------
    n_threads : int or None
        None uses every thread OpenMP offers (all cores, or
        ``OMP_NUM_THREADS`` when set, or the limit set by threadpoolctl).
        A negative value counts down from the number of cores: -1 is all
        cores, -2 all but one, and so on (never fewer than one). 0 is an
        error.

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
    if not openmp_enabled():
        return 1
    if n_threads is None:
        return max(1, openmp_max_threads())
    if n_threads < 0:
        return max(1, (os.cpu_count() or 1) + 1 + int(n_threads))
    return int(n_threads)


def result_dtype(*dtypes):
    """The floating dtype a kernel computes in for inputs of these dtypes.

    float32 stays float32 (float16 is widened to float32), float64 stays
    float64, in either byte order; bools and integers are promoted to
    float64; a mix of float32 and float64 gives float64. Complex, object,
    string and extended precision dtypes are refused.
    """
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
    below ``minimum``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def ntuple(value, n, name, minimum=None):
    """Expand an int, or check a sequence, into a tuple of ``n`` ints.

    Parameters
    ----------
    value : int or sequence of int
        One value for every dimension, or one per dimension.
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
                             f"got {len(value)} values: {tuple(value)}")
        return tuple(check_int(v, name, minimum) for v in value)
    return (check_int(value, name, minimum),) * n
