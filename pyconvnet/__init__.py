"""pyconvnet: convolution and pooling for convolutional neural networks.

Typed Cython kernels with OpenMP for correlation, convolution and pooling,
their backward passes, shape and cost calculators, and the layers to train a
small network, each documented with the derivation it implements.

Modules
-------
signal
    correlate, convolve and similarity_map of 1-D, 2-D and 3-D arrays.
shapes
    Output sizes, parameter counts, MACs, memory and receptive fields, from
    layer specifications alone; summaries of the classic networks.
architectures
    Layer specifications of LeNet-5, AlexNet, VGG, GoogLeNet, ResNet and
    others, for :func:`shapes.summary`.
functional
    Convolution and pooling layers as functions on NCHW arrays, forward and
    backward, as in :mod:`torch.nn.functional`.
nn
    Layers, losses, optimisers and LeNet-5.
datasets
    The handwritten digits that scikit-learn ships, and MNIST IDX files.
dask
    The signal functions and layers on Dask arrays (optional dependency).
"""
import importlib as _importlib

from ._ext import check_build as _check_build
from ._version import __version__
# gradcheck needs only NumPy; imported now, ``pyconvnet.gradcheck`` stays the
# function even after ``import pyconvnet.gradcheck`` has loaded the module.
from .gradcheck import GradcheckResult, gradcheck

_check_build()

__all__ = [
    "__version__",
    "GradcheckResult",
    "architectures",
    "conv_output_size",
    "datasets",
    "functional",
    "gradcheck",
    "nn",
    "shapes",
    "show_config",
    "signal",
    "summary",
]

# Loaded on first use (PEP 562), so that the calculators and the command line
# start without loading the compiled kernels and the OpenMP runtime.
_SUBMODULES = {"architectures", "datasets", "functional", "nn", "shapes", "signal"}
_NAMES = {"conv_output_size": "shapes", "summary": "shapes", "show_config": "_config"}


def __getattr__(name):
    if name in _SUBMODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    if name in _NAMES:
        value = getattr(_importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
