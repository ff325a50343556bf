"""Layers, losses, optimisers and LeNet-5, trained by back-propagation.

Every layer has ``forward(x)`` and ``backward(grad)``, its parameters and
gradients by name (:meth:`Module.params`, :meth:`Module.grads`),
``train()``/``eval()`` modes and a ``layer_specs()`` method so that
:func:`pyconvnet.shapes.summary` can describe any model.

Examples
--------
>>> import numpy as np
>>> from pyconvnet import nn
>>> model = nn.lenet5(activation="relu", pooling="max", rng=0)
>>> x = np.zeros((4, 1, 32, 32), np.float32)
>>> loss = nn.CrossEntropyLoss()
>>> value = loss(model.forward(x), np.array([0, 1, 2, 3]))
>>> _ = model.backward(loss.backward())
>>> nn.SGD(model, lr=0.1, momentum=0.9).step()
"""
from . import init
from ._module import Module, Sequential, load_weights, save_weights
from .layers import (AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, AvgPool3d, BatchNorm2d,
                     Conv1d, Conv2d, Conv3d, Dropout, Flatten, Linear, MapCombination,
                     MaxPool1d, MaxPool2d, MaxPool3d, ReLU, Sigmoid, Subsampling, Tanh)
from .convnet import conv_net
from .lenet5 import LENET5_C3_TABLE, c3_connection_mask, lenet5
from .losses import (CrossEntropyLoss, EuclideanLoss, MSELoss, euclidean_loss, log_softmax,
                     mean_squared_error, mse_loss, softmax, softmax_cross_entropy)
from .optim import SGD

__all__ = [
    "Module", "Sequential", "save_weights", "load_weights",
    "Conv1d", "Conv2d", "Conv3d", "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool2d",
    "Subsampling", "MapCombination", "Linear", "ReLU", "Sigmoid", "Tanh", "Flatten",
    "Dropout", "BatchNorm2d",
    "CrossEntropyLoss", "MSELoss", "EuclideanLoss", "softmax_cross_entropy", "mse_loss",
    "euclidean_loss", "mean_squared_error",
    "softmax", "log_softmax",
    "SGD", "init", "conv_net", "lenet5", "LENET5_C3_TABLE", "c3_connection_mask",
]
