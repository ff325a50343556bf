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
dask
    The signal functions on Dask arrays (optional dependency).
"""
from . import architectures, shapes, signal
from ._config import show_config
from ._version import __version__
from .shapes import conv_output_size, summary

__all__ = [
    "__version__",
    "architectures",
    "conv_output_size",
    "shapes",
    "show_config",
    "signal",
    "summary",
]
