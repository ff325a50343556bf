"""pyconvnet: convolution and pooling for convolutional neural networks.

Typed Cython kernels with OpenMP for correlation, convolution and pooling,
their backward passes, shape and cost calculators, and the layers to train a
small network, each documented with the derivation it implements.
"""
from . import signal
from ._config import show_config
from ._version import __version__

__all__ = ["__version__", "show_config", "signal"]
