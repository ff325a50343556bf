"""Built-in network specs for :func:`pyconvnet.shapes.summary`.

Each architecture is a small builder function that returns a
:class:`~pyconvnet.shapes.Layer` tree. The classification models reproduce
torchvision's definitions layer for layer, so their parameter counts equal
torchvision's published ``num_params`` exactly, and their multiply-accumulate
counts (convolutions and linear layers, bias excluded: the ``"torchvision"``
convention of :mod:`pyconvnet.shapes`) agree with torchvision's published
GFLOPS to within 1% at 3x224x224 (mostly to the printed two decimals).
Row names follow torchvision's module names where that is practical
(``features.0``, ``layer1.0.conv1``, ``inception3a.branch2.0.conv``).

Two details of torchvision that matter for the counts are kept on purpose:
GoogLeNet's "5x5" Inception branch uses a 3x3 convolution, and ResNet-50 and
deeper put the stride in the 3x3 convolution of the bottleneck (ResNet v1.5).
GoogLeNet is built without its auxiliary classifiers, as its published count
is.

The later networks (SqueezeNet, MobileNet v3, EfficientNet-B0, ShuffleNet
v2, RegNet, ConvNeXt-T) are built the same way. ConvNeXt's layer scale, a
product with a per-channel parameter in torchvision, is a depthwise 1x1
convolution here, whose multiplications (0.05% of the total) count as MACs.
U-Net is the segmentation network of Ronneberger et al. (2015) as
published: valid convolutions, encoder maps cropped before the skip
concatenations (a :func:`~pyconvnet.shapes.graph`), a 1x572x572 input.

LeNet-5 comes in two versions. ``"lenet5"`` is the one most courses and
frameworks build: C3 connected to all six S2 maps, plain 2x2 average pooling
for S2/S4, a linear output layer; 61,706 parameters on a 1x32x32 input.
``"lenet5_1998"`` follows LeCun et al. (1998): C3 reads the sparse connection
table of the paper (60 of the 96 map pairs), S2 and S4 are trainable
subsampling layers (a coefficient and a bias per map), and the output layer
is made of Euclidean RBF units whose 840 parameters are fixed, giving the
paper's 60,000 trainable parameters. The activations are ``tanh`` in both
(the paper scales it: 1.7159 tanh(2a/3)).

Examples
--------
>>> from pyconvnet.shapes import summary
>>> summary("vgg16").total_params
138357544
>>> s = summary("lenet5_1998")
>>> s.trainable_params, s.total_params
(60000, 60840)
>>> list_architectures()[:3]
['alexnet', 'convnext_tiny', 'densenet121']
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import re
from dataclasses import dataclass
from typing import Callable

from ._lenet5 import LENET5_C3_TABLE, lenet5_options
from ._specs import activation as activation_layer
from ._specs import (adaptive_avg_pool, avg_pool, batch_norm, channel_shuffle,
                     concat, conv, conv_transpose, crop, dense_block, dropout,
                     flatten, graph, layer_norm, linear, max_pool, node, rbf, relu,
                     residual, sequential, split, squeeze_excitation, subsampling)
from ._validation import check_int

__all__ = [
    "ArchitectureInfo",
    "alexnet",
    "architecture_info",
    "canonical_name",
    "convnext",
    "default_input_shape",
    "densenet",
    "efficientnet_b0",
    "get_architecture",
    "googlenet",
    "lenet5",
    "list_architectures",
    "mobilenet_v2",
    "mobilenet_v3",
    "regnet",
    "regnet_stages",
    "resnet",
    "shufflenet_v2",
    "squeezenet",
    "unet",
    "vgg",
]


def _conv_bn_act(out_channels, kernel_size, stride=1, padding=0, groups=1,
                 act="relu", name=None):
    """conv (no bias) -> batch norm -> activation, named conv/bn/act."""
    return sequential(
        conv(out_channels, kernel_size, stride, padding, groups=groups,
             bias=False, name="conv"),
        batch_norm(name="bn"), activation_layer(act, name=act), name=name)


# LeNet-5 ----------------------------------------------------------------

def lenet5(num_classes=10, *, activation="tanh", pooling="avg", c3="full",
           output="linear", act=None):
    """LeNet-5: C1-S2-C3-S4-C5-F6-output on a 1x32x32 input.

    The spec of the network that :func:`pyconvnet.nn.lenet5` builds with the
    same options (both check them with one function, so the two agree layer
    for layer).

    Parameters
    ----------
    num_classes : int, default 10
    activation : str, default 'tanh'
        Activation after C1, C3, C5, F6 (and S2/S4 with subsampling).
    pooling : {'avg', 'max', 'subsampling'}, default 'avg'
        Plain 2x2 average or max pooling, or the paper's subsampling with a
        trainable coefficient and bias per map (followed by the activation;
        ``'trainable'`` is accepted as an older name).
    c3 : {'full', 'sparse'}, default 'full'
        C3 connected to all six S2 maps (2,416 parameters) or through the
        paper's connection table :data:`LENET5_C3_TABLE` (1,516).
    output : {'linear', 'rbf'}, default 'linear'
        A linear layer with bias, or the paper's fixed Euclidean RBF units.
    act : str, optional
        The older name of ``activation``.

    Returns
    -------
    Layer

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(lenet5(), (1, 32, 32)).total_params
    61706
    >>> summary(lenet5(c3="sparse", pooling="subsampling", output="rbf"),
    ...         (1, 32, 32)).trainable_params
    60000
    """
    o = lenet5_options(num_classes, activation, pooling, c3, output, act=act)
    act = o["activation"]

    def pool(name):
        if o["pooling"] == "avg":
            return [avg_pool(2, name=name)]
        if o["pooling"] == "max":
            return [max_pool(2, name=name)]
        return [subsampling(2, name=name), activation_layer(act, name=name + ".act")]

    table = LENET5_C3_TABLE if o["c3"] == "sparse" else None
    out = (rbf(o["num_classes"], trainable=False, name="output") if o["output"] == "rbf"
           else linear(o["num_classes"], name="output"))
    return sequential(
        conv(6, 5, name="C1"), activation_layer(act, name="C1.act"), *pool("S2"),
        conv(16, 5, connections=table, name="C3"), activation_layer(act, name="C3.act"),
        *pool("S4"),
        conv(120, 5, name="C5"), activation_layer(act, name="C5.act"),
        flatten(name="flatten"),
        linear(84, name="F6"), activation_layer(act, name="F6.act"), out,
        name="lenet5")


# AlexNet and VGG ------------------------------------------------------------


def _classifier(num_classes, dropout_first):
    """The 4096-4096-classes head shared by AlexNet and VGG."""
    block = ([dropout(), linear(4096), relu()] if dropout_first
             else [linear(4096), relu(), dropout()])
    return sequential(*block, *block, linear(num_classes), name="classifier")


def alexnet(num_classes=1000):
    """AlexNet as in torchvision (the one-GPU variant of Krizhevsky's 2014 note).

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(alexnet(), (3, 224, 224)).total_params
    61100840
    """
    features = sequential(
        conv(64, 11, 4, 2), relu(), max_pool(3, 2),
        conv(192, 5, padding=2), relu(), max_pool(3, 2),
        conv(384, 3, padding=1), relu(),
        conv(256, 3, padding=1), relu(),
        conv(256, 3, padding=1), relu(), max_pool(3, 2), name="features")
    return sequential(features, adaptive_avg_pool(6, name="avgpool"),
                      flatten(name="flatten"),
                      _classifier(num_classes, dropout_first=True),
                      name="alexnet")


_VGG_STAGES = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3),
               19: (2, 2, 4, 4, 4)}


def vgg(depth=16, batch_norm_layers=False, num_classes=1000):
    """VGG-11/13/16/19 (configurations A, B, D, E), optionally with batch norm.

    Parameters
    ----------
    depth : {11, 13, 16, 19}
    batch_norm_layers : bool
        Insert batch normalisation after every convolution (``vgg16_bn``).
    num_classes : int

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(vgg(11), (3, 224, 224)).total_params
    132863336
    """
    if depth not in _VGG_STAGES:
        raise ValueError(f"depth must be one of {sorted(_VGG_STAGES)}, got {depth!r}")
    layers = []
    for n, width in zip(_VGG_STAGES[depth], (64, 128, 256, 512, 512)):
        for _ in range(n):
            layers.append(conv(width, 3, padding=1))
            if batch_norm_layers:
                layers.append(batch_norm())
            layers.append(relu())
        layers.append(max_pool(2, 2))
    name = f"vgg{depth}" + ("_bn" if batch_norm_layers else "")
    return sequential(sequential(*layers, name="features"),
                      adaptive_avg_pool(7, name="avgpool"), flatten(name="flatten"),
                      _classifier(num_classes, dropout_first=False),
                      name=name)


# GoogLeNet -------------------------------------------------------------------


def _inception(c1, c3_reduce, c3, c5_reduce, c5, pool_proj, name):
    # torchvision's "5x5" branch uses a 3x3 kernel; its published weights and
    # parameter count depend on it.
    return concat(
        _conv_bn_act(c1, 1, name="branch1"),
        sequential(_conv_bn_act(c3_reduce, 1), _conv_bn_act(c3, 3, padding=1),
                   name="branch2"),
        sequential(_conv_bn_act(c5_reduce, 1), _conv_bn_act(c5, 3, padding=1),
                   name="branch3"),
        sequential(max_pool(3, 1, 1, ceil_mode=True), _conv_bn_act(pool_proj, 1),
                   name="branch4"),
        name=name)


_INCEPTIONS = {
    "3a": (64, 96, 128, 16, 32, 32), "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64), "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64), "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128), "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def googlenet(num_classes=1000):
    """GoogLeNet (Inception v1) as in torchvision, without auxiliary heads.

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(googlenet(), (3, 224, 224)).total_params
    6624904
    """
    def stage(keys):
        return [_inception(*_INCEPTIONS[k], name="inception" + k) for k in keys]

    return sequential(
        _conv_bn_act(64, 7, 2, 3, name="conv1"),
        max_pool(3, 2, ceil_mode=True, name="maxpool1"),
        _conv_bn_act(64, 1, name="conv2"),
        _conv_bn_act(192, 3, padding=1, name="conv3"),
        max_pool(3, 2, ceil_mode=True, name="maxpool2"),
        *stage(["3a", "3b"]), max_pool(3, 2, ceil_mode=True, name="maxpool3"),
        *stage(["4a", "4b", "4c", "4d", "4e"]),
        max_pool(2, 2, ceil_mode=True, name="maxpool4"),
        *stage(["5a", "5b"]),
        adaptive_avg_pool(1, name="avgpool"), flatten(name="flatten"),
        dropout(0.2, name="dropout"), linear(num_classes, name="fc"),
        name="googlenet")


# ResNet, ResNeXt, Wide ResNet -------------------------------------------------

_RESNET_BLOCKS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
                  50: ("bottleneck", (3, 4, 6, 3)),
                  101: ("bottleneck", (3, 4, 23, 3)),
                  152: ("bottleneck", (3, 8, 36, 3))}


def _resnet_block(kind, in_channels, planes, stride, groups, width_per_group,
                  name):
    if kind == "basic":
        out = planes
        body = [conv(planes, 3, stride, 1, bias=False, name="conv1"),
                batch_norm(name="bn1"), relu(name="relu1"),
                conv(planes, 3, 1, 1, bias=False, name="conv2"),
                batch_norm(name="bn2")]
    else:
        out = planes * 4
        width = int(planes * (width_per_group / 64.0)) * groups
        body = [conv(width, 1, bias=False, name="conv1"), batch_norm(name="bn1"),
                relu(name="relu1"),
                conv(width, 3, stride, 1, groups=groups, bias=False, name="conv2"),
                batch_norm(name="bn2"), relu(name="relu2"),
                conv(out, 1, bias=False, name="conv3"), batch_norm(name="bn3")]
    shortcut = None
    if stride != 1 or in_channels != out:
        shortcut = sequential(conv(out, 1, stride, bias=False), batch_norm(),
                              name="downsample")
    return residual(body, shortcut, activation=relu(name="relu"), name=name), out


def resnet(depth=50, *, groups=1, width_per_group=64, num_classes=1000):
    """ResNet-18/34/50/101/152 and their ResNeXt and wide variants.

    Parameters
    ----------
    depth : {18, 34, 50, 101, 152}
    groups : int
        Cardinality of the 3x3 convolutions (ResNeXt: 32).
    width_per_group : int
        Bottleneck width per group: 64 is ResNet, 4 with 32 groups is
        ResNeXt 32x4d, 128 is Wide ResNet-2.
    num_classes : int

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(resnet(18), (3, 224, 224)).total_params
    11689512
    """
    if depth not in _RESNET_BLOCKS:
        raise ValueError(f"depth must be one of {sorted(_RESNET_BLOCKS)}, "
                         f"got {depth!r}")
    kind, counts = _RESNET_BLOCKS[depth]
    layers = [conv(64, 7, 2, 3, bias=False, name="conv1"), batch_norm(name="bn1"),
              relu(name="relu"), max_pool(3, 2, 1, name="maxpool")]
    channels = 64
    for stage, (planes, n) in enumerate(zip((64, 128, 256, 512), counts)):
        blocks = []
        for i in range(n):
            stride = 2 if stage > 0 and i == 0 else 1
            block, channels = _resnet_block(kind, channels, planes, stride,
                                            groups, width_per_group, str(i))
            blocks.append(block)
        layers.append(sequential(*blocks, name=f"layer{stage + 1}"))
    layers += [adaptive_avg_pool(1, name="avgpool"), flatten(name="flatten"),
               linear(num_classes, name="fc")]
    return sequential(*layers, name=f"resnet{depth}")


# DenseNet ---------------------------------------------------------------------

_DENSENETS = {121: (32, (6, 12, 24, 16), 64), 161: (48, (6, 12, 36, 24), 96),
              169: (32, (6, 12, 32, 32), 64), 201: (32, (6, 12, 48, 32), 64)}


def densenet(depth=121, num_classes=1000, *, bn_size=4):
    """DenseNet-121/161/169/201 (BN-ReLU-conv layers, compression 0.5).

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(densenet(121), (3, 224, 224)).total_params
    7978856
    """
    if depth not in _DENSENETS:
        raise ValueError(f"depth must be one of {sorted(_DENSENETS)}, got {depth!r}")
    growth, blocks, channels = _DENSENETS[depth]
    features = [conv(channels, 7, 2, 3, bias=False, name="conv0"),
                batch_norm(name="norm0"), relu(name="relu0"),
                max_pool(3, 2, 1, name="pool0")]
    for b, n in enumerate(blocks):
        features.append(dense_block(*[
            sequential(batch_norm(name="norm1"), relu(name="relu1"),
                       conv(bn_size * growth, 1, bias=False, name="conv1"),
                       batch_norm(name="norm2"), relu(name="relu2"),
                       conv(growth, 3, padding=1, bias=False, name="conv2"),
                       name=f"denselayer{i + 1}") for i in range(n)],
            name=f"denseblock{b + 1}"))
        channels += n * growth
        if b != len(blocks) - 1:
            channels //= 2
            features.append(sequential(
                batch_norm(name="norm"), relu(name="relu"),
                conv(channels, 1, bias=False, name="conv"),
                avg_pool(2, 2, name="pool"), name=f"transition{b + 1}"))
    features.append(batch_norm(name="norm5"))
    return sequential(sequential(*features, name="features"), relu(name="relu"),
                      adaptive_avg_pool(1, name="avgpool"), flatten(name="flatten"),
                      linear(num_classes, name="classifier"),
                      name=f"densenet{depth}")


# MobileNet v2 -------------------------------------------------------------------

_MOBILENET_V2 = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                 (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1))


def _make_divisible(value, divisor=8):
    """Round a channel count to a multiple of ``divisor``, losing at most 10%."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def mobilenet_v2(width_mult=1.0, num_classes=1000):
    """MobileNet v2: inverted residuals with linear bottlenecks.

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(mobilenet_v2(), (3, 224, 224)).total_params
    3504872
    """
    channels = _make_divisible(32 * width_mult)
    last = _make_divisible(1280 * max(1.0, width_mult))
    features = [_conv_bn_act(channels, 3, 2, 1, act="relu6")]
    for t, c, n, s in _MOBILENET_V2:
        out = _make_divisible(c * width_mult)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = int(round(channels * t))
            layers = [_conv_bn_act(hidden, 1, act="relu6")] if t != 1 else []
            layers += [_conv_bn_act(hidden, 3, stride, 1, groups=hidden,
                                    act="relu6"),
                       conv(out, 1, bias=False), batch_norm()]
            body = sequential(*layers, name="conv")
            name = str(len(features))
            features.append(residual(body, name=name)
                            if stride == 1 and channels == out
                            else sequential(body, name=name))
            channels = out
    features.append(_conv_bn_act(last, 1, act="relu6"))
    return sequential(sequential(*features, name="features"),
                      adaptive_avg_pool(1, name="avgpool"), flatten(name="flatten"),
                      sequential(dropout(0.2), linear(num_classes),
                                 name="classifier"),
                      name="mobilenet_v2")


# Networks of the 2016-2022 papers ----------------------------------------------
#
# torchvision builds each "conv - norm - activation" triple as one
# ``Conv2dNormActivation`` (an ``nn.Sequential`` whose children are ``0``,
# ``1``, ``2``), padded by (k - 1) / 2; ``_conv_norm`` keeps those names.


def _conv_norm(out_channels, kernel_size, stride=1, groups=1, act="relu",
               name=None):
    """torchvision's Conv2dNormActivation with batch norm (``act=None``: none)."""
    layers = [conv(out_channels, kernel_size, stride, (kernel_size - 1) // 2,
                   groups=groups, bias=False), batch_norm()]
    if act is not None:
        layers.append(activation_layer(act))
    return sequential(*layers, name=name)


# SqueezeNet ------------------------------------------------------------------------

# (squeeze, expand 1x1, expand 3x3) of each Fire module; "M" is a 3x3 max pool
_SQUEEZENETS = {
    "1_0": (96, 7, ((16, 64, 64), (16, 64, 64), (32, 128, 128), "M",
                    (32, 128, 128), (48, 192, 192), (48, 192, 192),
                    (64, 256, 256), "M", (64, 256, 256))),
    "1_1": (64, 3, ((16, 64, 64), (16, 64, 64), "M", (32, 128, 128),
                    (32, 128, 128), "M", (48, 192, 192), (48, 192, 192),
                    (64, 256, 256), (64, 256, 256))),
}


def _fire(squeeze, expand1x1, expand3x3, name):
    """A Fire module: a 1x1 squeeze, then 1x1 and 3x3 expansions side by side."""
    return sequential(
        conv(squeeze, 1, name="squeeze"), relu(name="squeeze_activation"),
        concat(sequential(conv(expand1x1, 1, name="conv"), relu(name="relu"),
                          name="1x1"),
               sequential(conv(expand3x3, 3, padding=1, name="conv"),
                          relu(name="relu"), name="3x3"),
               name="expand"),
        name=name)


def squeezenet(version="1_0", num_classes=1000, *, dropout_p=0.5):
    """SqueezeNet 1.0 (Iandola et al. 2016) and 1.1, as in torchvision.

    Fire modules (a 1x1 "squeeze" convolution feeding 1x1 and 3x3
    "expand" convolutions that are concatenated), no linear layer: the
    classifier is a 1x1 convolution to ``num_classes`` maps, a ReLU and
    global average pooling. Version 1.1 starts with a 3x3 convolution of 64
    maps and pools earlier: 2.4 times fewer MACs, about the same accuracy.

    Parameters
    ----------
    version : {'1_0', '1_1'}
    num_classes : int
    dropout_p : float
        Dropout before the final convolution.

    Returns
    -------
    Layer

    Notes
    -----
    See :ref:`theory-modern-architectures`.

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(squeezenet("1_0"), (3, 224, 224)).total_params
    1248424
    >>> summary(squeezenet("1_1"), (3, 224, 224)).total_params
    1235496
    """
    version = str(version).replace(".", "_")
    if version not in _SQUEEZENETS:
        raise ValueError(f"version must be one of {', '.join(_SQUEEZENETS)}, "
                         f"got {version!r}")
    width, kernel, plan = _SQUEEZENETS[version]
    features = [conv(width, kernel, 2), relu(), max_pool(3, 2, ceil_mode=True)]
    for item in plan:
        name = str(len(features))
        features.append(max_pool(3, 2, ceil_mode=True, name=name) if item == "M"
                        else _fire(*item, name=name))
    return sequential(
        sequential(*features, name="features"),
        sequential(dropout(dropout_p), conv(num_classes, 1), relu(),
                   adaptive_avg_pool(1), name="classifier"),
        flatten(name="flatten"), name=f"squeezenet{version}")


# RegNet ------------------------------------------------------------------------------

# torchvision's design-space parameters (Radosavovic et al. 2020):
# depth, w_0, w_a, w_m, group width, squeeze-and-excitation ratio
_REGNETS = {
    "x_400mf": (22, 24, 24.48, 2.54, 16, None),
    "y_400mf": (16, 48, 27.89, 2.09, 8, 0.25),
}


def regnet_stages(depth, w_0, w_a, w_m, group_width, bottleneck_multiplier=1.0):
    """The stages of a RegNet from its design-space parameters.

    Block ``j`` gets the width :math:`u_j = w_0 + w_a j`, quantised in log
    space to :math:`w_0 w_m^{\\lfloor \\log(u_j/w_0)/\\log w_m \\rceil}` and
    then to a multiple of 8; consecutive blocks of one width form a stage.
    Widths are finally made compatible with the group width, as torchvision
    does (``BlockParams.from_init_params``).

    Parameters
    ----------
    depth : int
        Number of blocks.
    w_0 : int
        Initial width, a multiple of 8.
    w_a : float
        Slope of the widths.
    w_m : float
        Width multiplier between stages, above 1.
    group_width : int
        Channels per group of the 3x3 convolutions.
    bottleneck_multiplier : float

    Returns
    -------
    list of tuple
        ``(width, depth, group_width)`` per stage.

    Examples
    --------
    >>> regnet_stages(22, 24, 24.48, 2.54, 16)       # RegNetX-400MF
    [(32, 1, 16), (64, 2, 16), (160, 7, 16), (400, 12, 16)]
    """
    depth = check_int(depth, "depth", 1)
    w_0 = check_int(w_0, "w_0", 8)
    if w_a < 0 or w_m <= 1 or w_0 % 8:
        raise ValueError(f"a RegNet needs w_a >= 0, w_m > 1 and w_0 a multiple "
                         f"of 8, got w_a={w_a!r}, w_m={w_m!r}, w_0={w_0!r}")
    widths = []
    for j in range(depth):
        exponent = round(math.log((j * w_a + w_0) / w_0) / math.log(w_m))
        widths.append(int(round(w_0 * w_m ** exponent / 8) * 8))
    stages = []
    for w in widths:
        if stages and stages[-1][0] == w:
            stages[-1][1] += 1
        else:
            stages.append([w, 1])
    out = []
    for w, n in stages:
        bottleneck = int(w * bottleneck_multiplier)
        g = min(group_width, bottleneck)
        bottleneck = _make_divisible(bottleneck, g)
        out.append((int(bottleneck / bottleneck_multiplier), n, g))
    return out


def regnet(variant="x_400mf", num_classes=1000):
    """RegNetX and RegNetY (Radosavovic et al. 2020), as in torchvision.

    A stem (3x3 convolution, stride 2, 32 maps) and four stages of residual
    bottleneck blocks whose 3x3 convolution is grouped (a fixed width per
    group); the widths and depths follow from four numbers
    (:func:`regnet_stages`). RegNetY adds squeeze-and-excitation to every
    block.

    Parameters
    ----------
    variant : {'x_400mf', 'y_400mf'}
    num_classes : int

    Returns
    -------
    Layer

    Notes
    -----
    See :ref:`theory-modern-architectures`.

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(regnet("x_400mf"), (3, 224, 224)).total_params
    5495976
    >>> summary(regnet("y_400mf"), (3, 224, 224)).total_params
    4344144
    """
    if variant not in _REGNETS:
        raise ValueError(f"variant must be one of {', '.join(_REGNETS)}, "
                         f"got {variant!r}")
    depth, w_0, w_a, w_m, group_width, se_ratio = _REGNETS[variant]
    width = 32
    stages = []
    for s, (out, n, g) in enumerate(regnet_stages(depth, w_0, w_a, w_m,
                                                  group_width), start=1):
        blocks = []
        for i in range(n):
            stride = 2 if i == 0 else 1
            body = [_conv_norm(out, 1, name="a"),
                    _conv_norm(out, 3, stride, groups=out // g, name="b")]
            if se_ratio:
                # the squeeze width is relative to the block's input
                body.append(squeeze_excitation(out, int(round(se_ratio * width)),
                                               name="se"))
            body.append(_conv_norm(out, 1, act=None, name="c"))
            shortcut = (_conv_norm(out, 1, stride, act=None, name="proj")
                        if stride != 1 or width != out else None)
            blocks.append(residual(sequential(*body, name="f"), shortcut,
                                   activation=relu(name="activation"),
                                   name=f"block{s}-{i}"))
            width = out
        stages.append(sequential(*blocks, name=f"block{s}"))
    return sequential(
        _conv_norm(32, 3, 2, name="stem"),
        sequential(*stages, name="trunk_output"),
        adaptive_avg_pool(1, name="avgpool"), flatten(name="flatten"),
        linear(num_classes, name="fc"), name=f"regnet_{variant}")


# MobileNet v3 and EfficientNet -------------------------------------------------------

# input, kernel, expanded, output channels, squeeze-and-excitation,
# activation, stride of each inverted residual block (Howard et al. 2019,
# tables 1 and 2)
_MOBILENET_V3 = {
    "large": (((16, 3, 16, 16, False, "relu", 1), (16, 3, 64, 24, False, "relu", 2),
               (24, 3, 72, 24, False, "relu", 1), (24, 5, 72, 40, True, "relu", 2),
               (40, 5, 120, 40, True, "relu", 1), (40, 5, 120, 40, True, "relu", 1),
               (40, 3, 240, 80, False, "hardswish", 2),
               (80, 3, 200, 80, False, "hardswish", 1),
               (80, 3, 184, 80, False, "hardswish", 1),
               (80, 3, 184, 80, False, "hardswish", 1),
               (80, 3, 480, 112, True, "hardswish", 1),
               (112, 3, 672, 112, True, "hardswish", 1),
               (112, 5, 672, 160, True, "hardswish", 2),
               (160, 5, 960, 160, True, "hardswish", 1),
               (160, 5, 960, 160, True, "hardswish", 1)), 1280),
    "small": (((16, 3, 16, 16, True, "relu", 2), (16, 3, 72, 24, False, "relu", 2),
               (24, 3, 88, 24, False, "relu", 1),
               (24, 5, 96, 40, True, "hardswish", 2),
               (40, 5, 240, 40, True, "hardswish", 1),
               (40, 5, 240, 40, True, "hardswish", 1),
               (40, 5, 120, 48, True, "hardswish", 1),
               (48, 5, 144, 48, True, "hardswish", 1),
               (48, 5, 288, 96, True, "hardswish", 2),
               (96, 5, 576, 96, True, "hardswish", 1),
               (96, 5, 576, 96, True, "hardswish", 1)), 1024),
}


def _inverted_residual(in_channels, kernel_size, expanded, out_channels, stride,
                       act, se, name):
    """MobileNet v3's and EfficientNet's block: 1x1 expansion (unless the
    width stays), depthwise convolution, squeeze-and-excitation ``se`` (a
    spec or None), linear 1x1 projection; a residual when the shape stays."""
    layers = []
    if expanded != in_channels:
        layers.append(_conv_norm(expanded, 1, act=act))
    layers.append(_conv_norm(expanded, kernel_size, stride, groups=expanded,
                             act=act))
    if se is not None:
        layers.append(se)
    layers.append(_conv_norm(out_channels, 1, act=None))
    body = sequential(*layers, name="block")
    if stride == 1 and in_channels == out_channels:
        return residual(body, name=name)
    return sequential(body, name=name)


def mobilenet_v3(size="large", num_classes=1000, *, dropout_p=0.2):
    """MobileNet v3 large and small (Howard et al. 2019), as in torchvision.

    MobileNet v2's inverted residuals with squeeze-and-excitation in some
    blocks (the gate is a hard sigmoid; the squeeze width a quarter of the
    expanded width, rounded to a multiple of 8), hard-swish activations in
    the later blocks, 5x5 depthwise kernels in some, and a head of a 1x1
    convolution, global pooling and two linear layers.

    Parameters
    ----------
    size : {'large', 'small'}
    num_classes : int
    dropout_p : float

    Returns
    -------
    Layer

    Notes
    -----
    See :ref:`theory-modern-architectures`.

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(mobilenet_v3("large"), (3, 224, 224)).total_params
    5483032
    >>> summary(mobilenet_v3("small"), (3, 224, 224)).total_params
    2542856
    """
    if size not in _MOBILENET_V3:
        raise ValueError(f"size must be one of {', '.join(_MOBILENET_V3)}, "
                         f"got {size!r}")
    blocks, last = _MOBILENET_V3[size]
    features = [_conv_norm(16, 3, 2, act="hardswish")]
    for cin, k, expanded, cout, se, act, stride in blocks:
        gate = (squeeze_excitation(expanded, _make_divisible(expanded // 4),
                                   scale_activation="hardsigmoid")
                if se else None)
        features.append(_inverted_residual(cin, k, expanded, cout, stride, act,
                                           gate, str(len(features))))
    features.append(_conv_norm(6 * blocks[-1][3], 1, act="hardswish"))
    return sequential(
        sequential(*features, name="features"),
        adaptive_avg_pool(1, name="avgpool"), flatten(name="flatten"),
        sequential(linear(last), activation_layer("hardswish"),
                   dropout(dropout_p), linear(num_classes), name="classifier"),
        name=f"mobilenet_v3_{size}")


# expansion, kernel, stride, input and output channels, blocks of each
# stage of EfficientNet-B0 (Tan & Le 2019, table 1)
_EFFICIENTNET_B0 = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2),
                    (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
                    (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                    (6, 3, 1, 192, 320, 1))


def efficientnet_b0(num_classes=1000, *, dropout_p=0.2):
    """EfficientNet-B0 (Tan & Le 2019), as in torchvision.

    The baseline that compound scaling enlarges into B1-B7: MBConv blocks
    (inverted residuals with squeeze-and-excitation in every block, the
    squeeze width a quarter of the block's input width) and SiLU
    activations throughout.

    Parameters
    ----------
    num_classes : int
    dropout_p : float

    Returns
    -------
    Layer

    Notes
    -----
    See :ref:`theory-modern-architectures`.

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(efficientnet_b0(), (3, 224, 224)).total_params
    5288548
    """
    features = [_conv_norm(32, 3, 2, act="silu")]
    for t, k, stride, cin, cout, n in _EFFICIENTNET_B0:
        blocks = []
        for i in range(n):
            width = cin if i == 0 else cout
            expanded = _make_divisible(width * t)
            gate = squeeze_excitation(expanded, max(1, width // 4),
                                      activation="silu")
            blocks.append(_inverted_residual(width, k, expanded, cout,
                                             stride if i == 0 else 1, "silu",
                                             gate, str(i)))
        features.append(sequential(*blocks, name=str(len(features))))
    features.append(_conv_norm(1280, 1, act="silu"))
    return sequential(
        sequential(*features, name="features"),
        adaptive_avg_pool(1, name="avgpool"), flatten(name="flatten"),
        sequential(dropout(dropout_p), linear(num_classes), name="classifier"),
        name="efficientnet_b0")


# ShuffleNet v2 ----------------------------------------------------------------------

# blocks per stage and output channels (stem, three stages, last convolution)
_SHUFFLENETS = {"x1_0": ((4, 8, 4), (24, 116, 232, 464, 1024))}


def _shuffle_block(in_channels, out_channels, stride, name):
    """ShuffleNet v2's unit: half the channels pass (stride 1) or go through
    a depthwise branch of their own (stride 2), the other half through 1x1,
    depthwise 3x3, 1x1; the halves are concatenated and shuffled."""
    half = out_channels // 2
    branch2 = sequential(
        conv(half, 1, bias=False), batch_norm(), relu(),
        conv(half, 3, stride, 1, groups=half, bias=False), batch_norm(),
        conv(half, 1, bias=False), batch_norm(), relu())
    if stride == 1:
        nodes = [node("split", split(half), "input"),
                 node("branch2", branch2, "split:1"),
                 node("cat", concat(), ["split:0", "branch2"])]
    else:
        branch1 = sequential(
            conv(in_channels, 3, stride, 1, groups=in_channels, bias=False),
            batch_norm(), conv(half, 1, bias=False), batch_norm(), relu())
        nodes = [node("branch1", branch1, "input"),
                 node("branch2", branch2, "input"),
                 node("cat", concat(), ["branch1", "branch2"])]
    return graph(*nodes, node("shuffle", channel_shuffle(2), "cat"), name=name)


def shufflenet_v2(width="x1_0", num_classes=1000):
    """ShuffleNet v2 (Ma et al. 2018), as in torchvision: ShuffleNet v2 x1.0.

    Units that split the channels in two halves, transform one (1x1,
    depthwise 3x3, 1x1 convolutions) and pass the other, concatenate them
    and shuffle the channels so that the halves mix in the next unit; a
    downsampling unit transforms both halves of a full copy instead. Each
    unit is a :func:`~pyconvnet.shapes.graph` of the nodes ``split`` (or
    ``branch1``), ``branch2``, ``cat`` and ``shuffle``.

    Parameters
    ----------
    width : {'x1_0'}
    num_classes : int

    Returns
    -------
    Layer

    Notes
    -----
    See :ref:`theory-modern-architectures`.

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(shufflenet_v2("x1_0"), (3, 224, 224)).total_params
    2278604
    """
    if width not in _SHUFFLENETS:
        raise ValueError(f"width must be one of {', '.join(_SHUFFLENETS)}, "
                         f"got {width!r}")
    repeats, channels = _SHUFFLENETS[width]
    layers = [sequential(conv(channels[0], 3, 2, 1, bias=False), batch_norm(),
                         relu(), name="conv1"),
              max_pool(3, 2, 1, name="maxpool")]
    cin = channels[0]
    for s, (n, cout) in enumerate(zip(repeats, channels[1:4]), start=2):
        layers.append(sequential(*[
            _shuffle_block(cin if i == 0 else cout, cout, 2 if i == 0 else 1, str(i))
            for i in range(n)], name=f"stage{s}"))
        cin = cout
    layers += [sequential(conv(channels[4], 1, bias=False), batch_norm(), relu(),
                          name="conv5"),
               adaptive_avg_pool(1, name="globalpool"), flatten(name="flatten"),
               linear(num_classes, name="fc")]
    return sequential(*layers, name=f"shufflenet_v2_{width}")


# ConvNeXt ---------------------------------------------------------------------------

# channels and blocks of each stage of ConvNeXt-T (Liu et al. 2022)
_CONVNEXTS = {"tiny": ((96, 3), (192, 3), (384, 9), (768, 3))}


def _convnext_block(dim, name):
    """7x7 depthwise convolution, layer norm over the channels, 1x1 expansion
    to ``4 dim`` with GELU, 1x1 projection, layer scale; plus the input.

    torchvision applies the two 1x1 steps as linear layers on a
    channels-last view, and the layer scale as a product with a ``(dim, 1,
    1)`` parameter: the same operations, written here as 1x1 convolutions
    and a depthwise 1x1 convolution without bias.
    """
    return residual(sequential(
        conv(dim, 7, padding=3, groups=dim, name="dwconv"),
        layer_norm(name="norm"),
        conv(4 * dim, 1, name="pwconv1"), activation_layer("gelu", name="act"),
        conv(dim, 1, name="pwconv2"),
        conv(dim, 1, groups=dim, bias=False, name="layer_scale")), name=name)


def convnext(size="tiny", num_classes=1000):
    """ConvNeXt (Liu et al. 2022), as in torchvision: ConvNeXt-T.

    A ResNet modernised step by step towards a vision transformer: a 4x4
    stride-4 "patchify" stem, stages of blocks (a 7x7 depthwise convolution,
    layer normalisation over the channels, an inverted bottleneck of two 1x1
    convolutions with GELU, a learned per-channel layer scale, an identity
    shortcut), downsampling by layer norm and a 2x2 stride-2 convolution
    between stages, and a layer-normalised linear head.

    Parameters
    ----------
    size : {'tiny'}
    num_classes : int

    Returns
    -------
    Layer

    Notes
    -----
    See :ref:`theory-modern-architectures`.

    The layer scale is written as a depthwise 1x1 convolution without bias
    (one parameter per channel, the same product), so its multiplications,
    0.05% of ConvNeXt-T's, count as MACs, where PyTorch's ``FlopCounterMode``
    and fvcore do not count an element-wise product.

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> summary(convnext("tiny"), (3, 224, 224)).total_params
    28589128
    """
    if size not in _CONVNEXTS:
        raise ValueError(f"size must be one of {', '.join(_CONVNEXTS)}, "
                         f"got {size!r}")
    stages = _CONVNEXTS[size]
    features = [sequential(conv(stages[0][0], 4, 4), layer_norm())]
    for s, (dim, n) in enumerate(stages):
        if s:
            features.append(sequential(layer_norm(), conv(dim, 2, 2),
                                       name=str(len(features))))
        features.append(sequential(*[_convnext_block(dim, str(i)) for i in range(n)],
                                   name=str(len(features))))
    return sequential(
        sequential(*features, name="features"),
        adaptive_avg_pool(1, name="avgpool"),
        sequential(layer_norm(), flatten(), linear(num_classes), name="classifier"),
        name=f"convnext_{size}")


# U-Net ------------------------------------------------------------------------------


def unet(in_channels=1, num_classes=2, *, widths=(64, 128, 256, 512, 1024)):
    """U-Net as published (Ronneberger et al. 2015), for a 1x572x572 input.

    A contracting path of two unpadded 3x3 convolutions (with ReLU) per
    level and 2x2 max pooling, an expanding path of 2x2 transposed
    convolutions ("up-convolutions") that halve the channels, each followed
    by the concatenation with the contracting path's map of that level,
    cropped to the same size (the unpadded convolutions make it larger), and
    two 3x3 convolutions; a final 1x1 convolution to ``num_classes`` maps.
    The long skips make it a :func:`~pyconvnet.shapes.graph`: nodes
    ``down1`` ... ``down5``, ``pool1`` ... ``pool4``, and per level ``k`` of
    the expanding path ``up{k}``, ``crop{k}``, ``cat{k}``, ``dec{k}``; then
    ``head``. The output of a 572x572 input is 388x388.

    Parameters
    ----------
    in_channels : int
        Channels of the input, which the first convolution checks.
    num_classes : int
    widths : sequence of int
        Channels of each level, from the top; the paper's by default.

    Returns
    -------
    Layer

    Notes
    -----
    See :ref:`theory-modern-architectures`.

    Examples
    --------
    >>> from pyconvnet.shapes import summary
    >>> s = summary(unet(), (1, 572, 572))
    >>> s.total_params, s.output_shape
    (31030658, (2, 388, 388))
    """
    widths = tuple(check_int(w, "widths entry", 1) for w in widths)
    if len(widths) < 2:
        raise ValueError(f"a U-Net needs at least two levels, got widths={widths}")

    def double_conv(width, first_in=None):
        return sequential(conv(width, 3, in_channels=first_in, name="conv1"),
                          relu(name="relu1"), conv(width, 3, name="conv2"),
                          relu(name="relu2"))

    levels = len(widths)
    nodes, previous = [], "input"
    for k, width in enumerate(widths, start=1):
        nodes.append(node(f"down{k}", double_conv(
            width, check_int(in_channels, "in_channels", 1) if k == 1 else None),
            previous))
        previous = f"down{k}"
        if k < levels:
            nodes.append(node(f"pool{k}", max_pool(2), previous))
            previous = f"pool{k}"
    for k in range(levels - 1, 0, -1):
        width = widths[k - 1]
        nodes += [node(f"up{k}", conv_transpose(width, 2, 2), previous),
                  node(f"crop{k}", crop(), [f"down{k}", f"up{k}"]),
                  node(f"cat{k}", concat(), [f"crop{k}", f"up{k}"]),
                  node(f"dec{k}", double_conv(width), f"cat{k}")]
        previous = f"dec{k}"
    nodes.append(node("head", conv(num_classes, 1), previous))
    return graph(*nodes, name="unet")


# registry -------------------------------------------------------------------------


@dataclass(frozen=True)
class ArchitectureInfo:
    """A built-in architecture: its name, default input and builder."""

    name: str
    description: str
    input_shape: tuple
    build: Callable


_IMAGENET = (3, 224, 224)
_REGISTRY = {}


def _register(name, description, build, input_shape=_IMAGENET):
    _REGISTRY[name] = ArchitectureInfo(name, description, input_shape, build)


_register("lenet5", "LeNet-5, full C3, average pooling, linear output "
          "(LeCun et al. 1998 as commonly built)", lenet5, (1, 32, 32))
_register("lenet5_1998", "LeNet-5 as published: sparse C3, trainable "
          "subsampling, fixed RBF output",
          lambda **kw: lenet5(c3="sparse", pooling="subsampling", output="rbf", **kw),
          (1, 32, 32))
_register("alexnet", "AlexNet (Krizhevsky 2014 one-GPU variant)", alexnet)
for _d in (11, 13, 16, 19):
    _register(f"vgg{_d}", f"VGG-{_d} (Simonyan & Zisserman 2014)",
              lambda _d=_d, **kw: vgg(_d, **kw))
    _register(f"vgg{_d}_bn", f"VGG-{_d} with batch normalisation",
              lambda _d=_d, **kw: vgg(_d, batch_norm_layers=True, **kw))
_register("googlenet", "GoogLeNet / Inception v1 (Szegedy et al. 2014), "
          "no auxiliary heads", googlenet)
for _d in (18, 34, 50, 101, 152):
    _register(f"resnet{_d}", f"ResNet-{_d} (He et al. 2015)",
              lambda _d=_d, **kw: resnet(_d, **kw))
_register("resnext50_32x4d", "ResNeXt-50 32x4d (Xie et al. 2016)",
          lambda **kw: resnet(50, groups=32, width_per_group=4, **kw))
_register("resnext101_32x8d", "ResNeXt-101 32x8d",
          lambda **kw: resnet(101, groups=32, width_per_group=8, **kw))
_register("resnext101_64x4d", "ResNeXt-101 64x4d",
          lambda **kw: resnet(101, groups=64, width_per_group=4, **kw))
_register("wide_resnet50_2", "Wide ResNet-50-2 (Zagoruyko & Komodakis 2016)",
          lambda **kw: resnet(50, width_per_group=128, **kw))
_register("wide_resnet101_2", "Wide ResNet-101-2",
          lambda **kw: resnet(101, width_per_group=128, **kw))
for _d in (121, 161, 169, 201):
    _register(f"densenet{_d}", f"DenseNet-{_d} (Huang et al. 2016)",
              lambda _d=_d, **kw: densenet(_d, **kw))
_register("mobilenet_v2", "MobileNet v2 (Sandler et al. 2018)", mobilenet_v2)
_register("squeezenet1_0", "SqueezeNet 1.0 (Iandola et al. 2016)",
          lambda **kw: squeezenet("1_0", **kw))
_register("squeezenet1_1", "SqueezeNet 1.1 (2.4x fewer MACs than 1.0)",
          lambda **kw: squeezenet("1_1", **kw))
_register("regnet_x_400mf", "RegNetX-400MF (Radosavovic et al. 2020)",
          lambda **kw: regnet("x_400mf", **kw))
_register("regnet_y_400mf", "RegNetY-400MF: RegNetX with squeeze-and-excitation",
          lambda **kw: regnet("y_400mf", **kw))
_register("mobilenet_v3_large", "MobileNet v3 large (Howard et al. 2019)",
          lambda **kw: mobilenet_v3("large", **kw))
_register("mobilenet_v3_small", "MobileNet v3 small",
          lambda **kw: mobilenet_v3("small", **kw))
_register("efficientnet_b0", "EfficientNet-B0 (Tan & Le 2019)", efficientnet_b0)
_register("shufflenet_v2_x1_0", "ShuffleNet v2 x1.0 (Ma et al. 2018)",
          lambda **kw: shufflenet_v2("x1_0", **kw))
_register("convnext_tiny", "ConvNeXt-T (Liu et al. 2022)",
          lambda **kw: convnext("tiny", **kw))
_register("unet", "U-Net (Ronneberger et al. 2015): valid convolutions, "
          "2 classes", unet, (1, 572, 572))
del _d

_ALIASES = {"lenet": "lenet5", "inceptionv1": "googlenet",
            "resnext50": "resnext50_32x4d", "wideresnet502": "wide_resnet50_2",
            "wrn502": "wide_resnet50_2", "wideresnet1012": "wide_resnet101_2",
            "wrn1012": "wide_resnet101_2", "lenet51998": "lenet5_1998"}


def _key(name):
    return re.sub(r"[\s_\-.]", "", name.lower())


def list_architectures():
    """Names of the built-in architectures, sorted.

    Examples
    --------
    >>> "resnet50" in list_architectures()
    True
    """
    return sorted(_REGISTRY)


def canonical_name(name):
    """The registered name for a spelling such as ``"ResNet-50"``.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If no architecture matches; the message lists the known ones.

    Examples
    --------
    >>> canonical_name("ResNet-50"), canonical_name("MobileNet v2")
    ('resnet50', 'mobilenet_v2')
    """
    if not isinstance(name, str):
        raise TypeError(f"architecture name must be a str, got "
                        f"{type(name).__name__}")
    keys = {_key(n): n for n in _REGISTRY}
    key = _key(name)
    if key in keys:
        return keys[key]
    if key in _ALIASES:
        return _ALIASES[key]
    close = difflib.get_close_matches(name.lower(), list(_REGISTRY), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ValueError(f"unknown architecture {name!r}{hint}; known architectures: "
                     + ", ".join(list_architectures()))


def architecture_info(name):
    """The :class:`ArchitectureInfo` of a built-in architecture."""
    return _REGISTRY[canonical_name(name)]


def default_input_shape(name):
    """Default input shape, ``(3, 224, 224)`` or ``(1, 32, 32)`` for LeNet-5.

    Examples
    --------
    >>> default_input_shape("lenet5")
    (1, 32, 32)
    """
    return architecture_info(name).input_shape


def get_architecture(name, **options):
    """Build the spec of a built-in architecture.

    Parameters
    ----------
    name : str
        Any spelling :func:`canonical_name` accepts.
    **options
        Passed to the builder, e.g. ``num_classes=10``.

    Returns
    -------
    Layer

    Examples
    --------
    >>> get_architecture("resnet18").name
    'resnet18'
    """
    info = architecture_info(name)
    layer = info.build(**options)
    if layer.name != info.name:
        layer = dataclasses.replace(layer, name=info.name)
    return layer
