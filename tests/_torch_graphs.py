"""Torch modules from pyconvnet layer specs, graphs included: the oracle of
the graph tests (parameters, output shapes, FLOPs and gradient reach)."""


def torch_module(layer, nd, torch, device="cpu"):
    """A torch module computing ``layer`` on ``nd``-D maps.

    Channel counts are found on the first forward pass, as PyTorch's lazy
    modules find them: run one forward before counting parameters.
    """
    nn = torch.nn
    F = torch.nn.functional

    class Lazy(nn.Module):
        """Builds its module from the first input's channel count."""

        def __init__(self, make):
            super().__init__()
            self.make, self.inner = make, None

        def forward(self, x):
            if self.inner is None:
                self.inner = self.make(x).to(x.device)
            return self.inner(x)

    class Fn(nn.Module):
        def __init__(self, fn):
            super().__init__()
            self.fn = fn

        def forward(self, *xs):
            return self.fn(*xs)

    class ChannelsLayerNorm(nn.Module):
        def __init__(self, c, affine, bias):
            super().__init__()
            self.norm = nn.LayerNorm(c, elementwise_affine=affine, bias=bias)

        def forward(self, x):
            return self.norm(x.movedim(1, -1)).movedim(-1, 1)

    class Residual(nn.Module):
        def __init__(self, body, shortcut, act):
            super().__init__()
            self.body, self.shortcut, self.act = body, shortcut, act

        def forward(self, x):
            y = self.body(x) + (x if self.shortcut is None else self.shortcut(x))
            return y if self.act is None else self.act(y)

    class Concat(nn.Module):
        def __init__(self, branches, axis):
            super().__init__()
            self.branches, self.axis = nn.ModuleList(branches), axis

        def forward(self, x):
            return torch.cat([b(x) for b in self.branches],
                             self.axis + 1 if self.axis >= 0 else self.axis)

    class Graph(nn.Module):
        def __init__(self, layer):
            super().__init__()
            self.source = layer.config["inputs"][0]
            self.target = layer.config["outputs"][0]
            self.nodes = [(nd.name, nd.config["inputs"], nd.children[0])
                          for nd in layer.children]
            self.mods = nn.ModuleDict({
                name: build(child) for name, _, child in self.nodes
                if child.kind != "split"})

        def forward(self, x):
            env = {self.source: x}
            for name, refs, child in self.nodes:
                xs = []
                for ref in refs:
                    base, _, piece = ref.partition(":")
                    xs.append(env[base][int(piece)] if piece else env[base])
                if child.kind == "split":
                    env[name] = torch.split(xs[0], child.config["sizes"] if isinstance(
                        child.config["sizes"], int) else list(child.config["sizes"]),
                        child.config["axis"] + 1 if child.config["axis"] >= 0
                        else child.config["axis"])
                else:
                    env[name] = self.mods[name](*xs)
            return env[self.target]

    def crop(x, cfg, like=None):
        sp = x.shape[2:]
        size = like.shape[2:] if like is not None else (
            cfg["size"] if isinstance(cfg["size"], tuple) else (cfg["size"],) * len(sp))
        if cfg["offset"] is None:
            off = [(n - s) // 2 for n, s in zip(sp, size)]
        else:
            off = cfg["offset"] if isinstance(cfg["offset"], tuple) \
                else (cfg["offset"],) * len(sp)
        idx = (slice(None), slice(None)) + tuple(slice(o, o + s) for o, s in zip(off, size))
        return x[idx]

    def pad_list(padding):
        if isinstance(padding, int):
            pairs = [(padding, padding)] * nd
        elif isinstance(padding[0], tuple):
            pairs = list(padding) * (nd if len(padding) == 1 else 1)
        else:
            pairs = [(p, p) for p in padding]
        return [v for pair in reversed(pairs) for v in pair]

    acts = {"relu": nn.ReLU, "relu6": nn.ReLU6, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
            "hardsigmoid": nn.Hardsigmoid, "hardswish": nn.Hardswish, "silu": nn.SiLU,
            "gelu": nn.GELU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU,
            "dropout": nn.Dropout, "flatten": nn.Flatten, "identity": nn.Identity}

    def build(layer):
        kind, cfg = layer.kind, layer.config
        if kind == "sequential":
            return nn.Sequential(*[build(c) for c in layer.children])
        if kind == "graph":
            return Graph(layer)
        if kind == "residual":
            body, short = layer.children
            act = cfg.get("activation")
            return Residual(build(body), None if short is None else build(short),
                            None if act is None else build(act))
        if kind == "concat" and layer.children:
            return Concat([build(c) for c in layer.children], cfg.get("axis", 0))
        if kind == "concat":
            axis = cfg.get("axis", 0)
            return Fn(lambda *xs: torch.cat(xs, axis + 1 if axis >= 0 else axis))
        if kind == "add":
            return Fn(lambda *xs: sum(xs[1:], xs[0]))
        if kind == "mul":
            def product(*xs):
                y = xs[0]
                for x in xs[1:]:
                    y = y * x
                return y
            return Fn(product)
        if kind == "conv":
            return getattr(nn, f"LazyConv{nd}d")(
                cfg["out_channels"], cfg["kernel_size"], cfg["stride"],
                cfg["padding"], cfg["dilation"], cfg["groups"], cfg["bias"])
        if kind == "conv_transpose":
            return getattr(nn, f"LazyConvTranspose{nd}d")(
                cfg["out_channels"], cfg["kernel_size"], cfg["stride"],
                cfg["padding"], cfg["output_padding"], cfg["groups"], cfg["bias"],
                cfg["dilation"])
        if kind == "linear":
            return nn.LazyLinear(cfg["out_features"], cfg["bias"])
        if kind == "batch_norm":
            return getattr(nn, f"LazyBatchNorm{nd}d")(affine=cfg["affine"])
        if kind == "max_pool":
            return getattr(nn, f"MaxPool{nd}d")(
                cfg["kernel_size"], cfg["stride"], cfg["padding"], cfg["dilation"],
                ceil_mode=cfg["ceil_mode"])
        if kind == "avg_pool":
            return getattr(nn, f"AvgPool{nd}d")(
                cfg["kernel_size"], cfg["stride"], cfg["padding"],
                ceil_mode=cfg["ceil_mode"])
        if kind == "adaptive_avg_pool":
            return getattr(nn, f"AdaptiveAvgPool{nd}d")(cfg["output_size"])
        if kind == "upsample":
            return nn.Upsample(size=cfg.get("size"), scale_factor=cfg.get("scale_factor"),
                               mode=cfg["mode"],
                               align_corners=None if cfg["mode"] == "nearest"
                               else cfg["align_corners"])
        if kind == "pixel_shuffle":
            return nn.PixelShuffle(cfg["factor"])
        if kind == "pixel_unshuffle":
            return nn.PixelUnshuffle(cfg["factor"])
        if kind == "channel_shuffle":
            return nn.ChannelShuffle(cfg["groups"])
        if kind == "reshape":
            return Fn(lambda x: x.reshape(x.shape[0], *cfg["shape"]))
        if kind == "pad":
            return Fn(lambda x: F.pad(x, pad_list(cfg["padding"]), mode=cfg["mode"],
                                      value=cfg["value"] if cfg["mode"] == "constant"
                                      else None))
        if kind == "crop":
            return Fn(lambda x, like=None: crop(x, cfg, like))
        if kind == "slice":
            def take(x):
                idx = [slice(None)] * x.dim()
                idx[cfg["axis"] + 1 if cfg["axis"] >= 0 else cfg["axis"]] = slice(
                    cfg["start"], cfg["stop"], cfg["step"])
                return x[tuple(idx)]
            return Fn(take)
        if kind == "group_norm":
            return Lazy(lambda x: nn.GroupNorm(cfg["num_groups"], x.shape[1],
                                               affine=cfg["affine"]))
        if kind == "instance_norm":
            return Lazy(lambda x: getattr(nn, f"InstanceNorm{nd}d")(
                x.shape[1], affine=cfg["affine"]))
        if kind == "layer_norm":
            if cfg["normalized_shape"] is None:
                return Lazy(lambda x: ChannelsLayerNorm(x.shape[1], cfg["affine"],
                                                        cfg["bias"]))
            return nn.LayerNorm(cfg["normalized_shape"], elementwise_affine=cfg["affine"],
                                bias=cfg["bias"])
        if kind in ("relu", "relu6"):
            return acts[kind]()
        return acts[kind]()

    with torch.device(device):
        return build(layer)


def torch_counts(spec, shape, torch):
    """(parameters, FLOPs, output shape) of a spec's torch module on the meta
    device."""
    from torch.utils.flop_counter import FlopCounterMode

    from pyconvnet.shapes import as_layer
    with torch.device("meta"):
        model = torch_module(as_layer(spec), len(shape) - 1, torch, "meta").eval()
        x = torch.zeros(1, *shape)
        with FlopCounterMode(display=False) as counter:
            y = model(x)
    params = sum(p.numel() for p in model.parameters())
    return params, counter.get_total_flops(), tuple(y.shape[1:])


def torch_saved_bytes(spec, shape, torch, batch=8):
    """Bytes of the distinct storages autograd keeps in a training-mode
    forward pass, parameters and buffers excluded (meta tensors)."""
    from pyconvnet.shapes import as_layer
    with torch.device("meta"):
        model = torch_module(as_layer(spec), len(shape) - 1, torch, "meta").train()
        x = torch.zeros(batch, *shape)
        model(x[:2])                       # materialise the lazy modules
        state = {t.untyped_storage()._cdata
                 for t in list(model.parameters()) + list(model.buffers())}
        kept = {}

        def pack(tensor):
            storage = tensor.untyped_storage()
            if storage._cdata not in state:
                kept[storage._cdata] = storage.nbytes()
            return tensor

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            model(x)
    return sum(kept.values())


def torch_backward_flops(spec, shape, torch):
    """FLOPs FlopCounterMode counts in the backward pass of one sample."""
    from torch.utils.flop_counter import FlopCounterMode

    from pyconvnet.shapes import as_layer
    with torch.device("meta"):
        model = torch_module(as_layer(spec), len(shape) - 1, torch, "meta").eval()
        y = model(torch.zeros(1, *shape))
        with FlopCounterMode(display=False) as counter:
            y.sum().backward()
    return counter.get_total_flops()
