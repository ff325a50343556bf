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
from . import architectures, datasets, functional, nn, shapes, signal
from ._config import show_config
from ._version import __version__
from .gradcheck import GradcheckResult, gradcheck
from .shapes import conv_output_size, summary

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
