"""The options of LeNet-5 (LeCun, Bottou, Bengio and Haffner, 1998), in one
place for the spec (:func:`pyconvnet.architectures.lenet5`) and the model
(:func:`pyconvnet.nn.lenet5`): the keyword set, the defaults, their checks and
the C3 connection table.
"""
from ._specs import ACTIVATIONS
from ._validation import check_bool, check_int

__all__ = ["LENET5_C3_TABLE", "lenet5_options"]

#: For each C3 map, the S2 maps (0-5) it reads (LeCun et al. 1998, Table I).
#: Maps 0-5 read three contiguous maps, 6-11 four contiguous, 12-14 four
#: non-contiguous, and map 15 all six: 60 of the 96 map pairs.
LENET5_C3_TABLE = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (0, 4, 5), (0, 1, 5),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (0, 3, 4, 5), (0, 1, 4, 5),
    (0, 1, 2, 5), (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)

_LENET5_CHOICES = {
    "pooling": ("avg", "max", "subsampling"),
    "c3": ("full", "sparse"),
    "output": ("linear", "rbf"),
}


def lenet5_options(num_classes=10, activation="tanh", pooling="avg", c3="full",
                    output="linear", *, act=None, sparse_c3=None):
    """The options of LeNet-5, checked: the one keyword set and the defaults
    that :func:`pyconvnet.architectures.lenet5` (the spec) and
    :func:`pyconvnet.nn.lenet5` (the model) share.

    ``act`` (of :func:`pyconvnet.architectures.lenet5`) and ``sparse_c3`` (of
    :func:`pyconvnet.nn.lenet5`) are the older spellings of ``activation``
    and ``c3``; ``pooling="trainable"`` is the older spelling of
    ``"subsampling"``. Returns a dict of ``num_classes``, ``activation``,
    ``pooling``, ``c3`` and ``output``.
    """
    if act is not None:
        if activation != "tanh" and activation != act:
            raise TypeError("give the activation once: act is the older name "
                            "of activation")
        activation = act
    if sparse_c3 is not None:
        sparse = check_bool(sparse_c3, "sparse_c3")
        if c3 != "full" and c3 != ("sparse" if sparse else "full"):
            raise TypeError("give the C3 connection once: sparse_c3 is the older "
                            "name of c3")
        c3 = "sparse" if sparse else "full"
    if pooling == "trainable":
        pooling = "subsampling"
    options = dict(pooling=pooling, c3=c3, output=output)
    for arg, value in options.items():
        allowed = _LENET5_CHOICES[arg]
        if value not in allowed:
            raise ValueError(f"{arg} must be one of {', '.join(allowed)}, "
                             f"got {value!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                         f"got {activation!r}")
    return dict(num_classes=check_int(num_classes, "num_classes", 1),
                activation=activation, **options)
