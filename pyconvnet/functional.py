"""Convolution and pooling layers as functions on NumPy arrays (NCHW).

The functions follow :mod:`torch.nn.functional`: the same names, argument
rules, output shapes and values, on ``(N, C, *spatial)`` arrays. Every
forward function has a backward counterpart that returns the gradients
PyTorch's autograd would.
"""
from ._convolution import *  # noqa: F401,F403
from ._convolution import __all__ as _convolution_all
from ._pooling import *  # noqa: F401,F403
from ._pooling import __all__ as _pooling_all

__all__ = list(_convolution_all) + list(_pooling_all)
