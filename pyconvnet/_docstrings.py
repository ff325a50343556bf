"""Parameter descriptions that several docstrings share, and the filler.

A docstring names a shared block with a ``%(name)s`` line of its own, at the
indentation of its other parameters; :func:`docformat` (or the decorator
:func:`docfiller`) puts the block of that name in :data:`DOCS` there,
indented like that line, as SciPy's ``ndimage`` does with its ``docfiller``.
Values given by keyword fill the other placeholders, such as the ``%(nd)s``
of a template written once for the 1-, 2- and 3-D functions; blocks may use
them too. ``%%`` is a literal percent sign (needed only before a ``(``).

>>> print(docformat('''Pool.
...
...     Parameters
...     ----------
...     %(pool_input_shape)s
...     kernel_size : int or tuple of %(nd)s ints
... ''', nd=2))
Pool.
<BLANKLINE>
    Parameters
    ----------
    input_shape : tuple of int
        Shape of the pooled input.
    kernel_size : int or tuple of 2 ints
<BLANKLINE>
"""
import re
import textwrap

__all__ = ["DOCS", "docfiller", "docformat"]

DOCS = {
    # --- convolution layers: conv*d and conv*d_backward -------------------------
    "conv_stride": """\
stride : int or tuple of int, default 1
    Step between output positions, per spatial axis (>= 1).""",
    "conv_padding": """\
padding : int, tuple of int, 'valid' or 'same', default 0
    Zeros added on both sides of each spatial axis (>= 0). 'valid' is no
    padding; 'same' keeps the input's size and needs stride 1: a total
    padding of ``dilation * (k - 1)`` per axis, ``total // 2`` before
    and the rest after (the odd one out, for even kernels, goes after).
    The strings are read in any case (``"SAME"`` is ``'same'``).""",
    "conv_dilation": """\
dilation : int or tuple of int, default 1
    Spacing between kernel taps (>= 1).""",
    "conv_groups": """\
groups : int, default 1
    Number of channel groups: ``in_channels`` and ``out_channels`` must
    both be divisible by it; each group of ``out_channels / groups``
    outputs sees only its own ``in_channels / groups`` inputs.
    ``groups == in_channels`` is a depthwise convolution.""",
    "conv_n_threads": """\
n_threads : int, optional
    Number of OpenMP threads. None uses every core OpenMP offers (or
    ``OMP_NUM_THREADS``, or a threadpoolctl limit); negative values count
    down from that number (-1 is the same as None); 0 is an error. BLAS
    runs on one thread inside each of them.""",

    # --- pooling: max_pool*d, avg_pool*d, adaptive and global pooling ------------
    "pool_x": """\
x : array_like
    ``(N, C, %(axes)s)`` or, without the batch axis, ``(C, %(axes)s)``.""",
    "pool_kernel_size": """\
kernel_size : int or tuple of %(nd)s ints
    Window size, >= 1.""",
    "pool_stride": """\
stride : int or tuple of %(nd)s ints, optional
    Step between windows, >= 1; defaults to ``kernel_size``.""",
    "pool_n_threads": """\
n_threads : int, optional
    Threads to split the ``N * C`` planes over.""",
    "pool_grad_output": """\
grad_output : array_like
    Gradient with respect to the pooled output.""",
    "pool_input_shape": """\
input_shape : tuple of int
    Shape of the pooled input.""",

    # --- layers of pyconvnet.nn ---------------------------------------------------
    "layer_pool_stride": """\
stride : int or tuple of int, optional
    Defaults to ``kernel_size``.""",

    # --- pyconvnet.dask -----------------------------------------------------------
    "dask_n_threads": """\
n_threads : int, default 1
    Threads of each chunk's kernel.""",

    # --- template matching: similarity_map, squared_difference_map --------------
    "match_mask": """\
mask : array_like of bool or float, optional
    Weights of the template's elements, of the template's shape (finite,
    non-negative, not all zero): a boolean mask scores only the elements
    where it is True, for a template of any outline. None weighs every
    element 1.""",
}


_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s")


def docformat(docstring, **names):
    """``docstring`` with every ``%(name)s`` filled from ``names`` or :data:`DOCS`.

    A value of several lines is dedented, and its lines after the first are
    indented like the line on which its placeholder stands.

    Parameters
    ----------
    docstring : str
        A docstring or template.
    **names
        Values of the placeholders that are not shared blocks (str or any
        object, formatted with ``str``); the shared blocks may use them too.

    Returns
    -------
    str

    Raises
    ------
    KeyError
        For a placeholder that is neither in ``names`` nor in :data:`DOCS`.
    """
    def fill(match):
        if match.group(1) is None:
            return "%"
        key = match.group(1)
        value = (textwrap.dedent(str(names[key])) if key in names
                 else docformat(DOCS[key], **names))
        line = docstring[docstring.rfind("\n", 0, match.start()) + 1:match.start()]
        indent = line[:len(line) - len(line.lstrip())]
        first, *rest = value.split("\n")
        return "\n".join([first] + [indent + r if r.strip() else r for r in rest])

    return _PLACEHOLDER.sub(fill, docstring)


def docfiller(obj=None, /, *, template=None, **names):
    """Decorator that fills the docstring of a function or class.

    ``@docfiller`` fills the object's own docstring from :data:`DOCS`;
    ``@docfiller(template=text, nd=2)`` sets it to ``text`` filled from
    :data:`DOCS` and the keyword values (see :func:`docformat`).
    """
    def fill(target):
        target.__doc__ = docformat(target.__doc__ if template is None else template,
                                   **names)
        return target

    return fill if obj is None else fill(obj)
