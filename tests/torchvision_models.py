"""torchvision's definitions of the networks the tests compare the built-in
specs with, written out here (the tests do not need torchvision), and the
U-Net of Ronneberger et al. (2015)."""
import math


def make_divisible(v, divisor=8, min_value=None):
    """torchvision's ``_make_divisible``."""
    min_value = divisor if min_value is None else min_value
    new = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def regnet_stages(torch, depth, w_0, w_a, w_m, group_width):
    """torchvision's ``BlockParams.from_init_params`` (bottleneck 1):
    (width, depth, group width) per stage, computed in float32 as there."""
    widths_cont = torch.arange(depth, device="cpu") * w_a + w_0
    capacity = torch.round(torch.log(widths_cont / w_0) / math.log(w_m))
    widths = (torch.round(torch.divide(w_0 * torch.pow(w_m, capacity), 8))
              * 8).int().tolist()
    splits = [w != wp for w, wp in zip(widths + [0], [0] + widths)]
    stage_widths = [w for w, t in zip(widths, splits[:-1]) if t]
    stage_depths = torch.diff(torch.tensor(
        [d for d, t in enumerate(splits) if t], device="cpu")).int().tolist()
    groups = [min(group_width, w) for w in stage_widths]
    stage_widths = [make_divisible(w, g) for w, g in zip(stage_widths, groups)]
    return list(zip(stage_widths, stage_depths, groups))


def torchvision_models(torch):
    """Builders of torchvision's models by name (and U-Net's paper model)."""
    nn = torch.nn
    F = torch.nn.functional

    class ConvNormAct(nn.Sequential):       # torchvision.ops.Conv2dNormActivation
        def __init__(self, cin, cout, k=3, stride=1, groups=1, act=nn.ReLU,
                     norm=nn.BatchNorm2d, bias=None, padding=None):
            padding = (k - 1) // 2 if padding is None else padding
            bias = norm is None if bias is None else bias
            layers = [nn.Conv2d(cin, cout, k, stride, padding, groups=groups,
                                bias=bias)]
            if norm is not None:
                layers.append(norm(cout))
            if act is not None:
                layers.append(act())
            super().__init__(*layers)

    class SqueezeExcitation(nn.Module):     # torchvision.ops.SqueezeExcitation
        def __init__(self, cin, squeeze, act=nn.ReLU, scale=nn.Sigmoid):
            super().__init__()
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc1 = nn.Conv2d(cin, squeeze, 1)
            self.fc2 = nn.Conv2d(squeeze, cin, 1)
            self.activation, self.scale_activation = act(), scale()

        def forward(self, x):
            s = self.scale_activation(self.fc2(self.activation(self.fc1(self.avgpool(x)))))
            return s * x

    # SqueezeNet ---------------------------------------------------------------
    class Fire(nn.Module):
        def __init__(self, cin, s, e1, e3):
            super().__init__()
            self.squeeze = nn.Conv2d(cin, s, 1)
            self.expand1x1 = nn.Conv2d(s, e1, 1)
            self.expand3x3 = nn.Conv2d(s, e3, 3, padding=1)

        def forward(self, x):
            x = F.relu(self.squeeze(x))
            return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], 1)

    def squeezenet(version):
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        if version == "1_0":
            features = [nn.Conv2d(3, 96, 7, 2), nn.ReLU(), pool(),
                        Fire(96, 16, 64, 64), Fire(128, 16, 64, 64),
                        Fire(128, 32, 128, 128), pool(), Fire(256, 32, 128, 128),
                        Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
                        Fire(384, 64, 256, 256), pool(), Fire(512, 64, 256, 256)]
        else:
            features = [nn.Conv2d(3, 64, 3, 2), nn.ReLU(), pool(),
                        Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), pool(),
                        Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), pool(),
                        Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
                        Fire(384, 64, 256, 256), Fire(512, 64, 256, 256)]
        return nn.Sequential(nn.Sequential(*features), nn.Dropout(0.5),
                             nn.Conv2d(512, 1000, 1), nn.ReLU(),
                             nn.AdaptiveAvgPool2d(1), nn.Flatten(1))

    # RegNet -----------------------------------------------------------------------
    class RegNetBlock(nn.Module):
        def __init__(self, cin, cout, stride, group_width, se_ratio):
            super().__init__()
            self.proj = (ConvNormAct(cin, cout, 1, stride, act=None)
                         if cin != cout or stride != 1 else None)
            layers = [ConvNormAct(cin, cout, 1),
                      ConvNormAct(cout, cout, 3, stride, groups=cout // group_width)]
            if se_ratio:
                layers.append(SqueezeExcitation(cout, int(round(se_ratio * cin))))
            layers.append(ConvNormAct(cout, cout, 1, act=None))
            self.f = nn.Sequential(*layers)

        def forward(self, x):
            x = self.f(x) + (x if self.proj is None else self.proj(x))
            return F.relu(x)

    def regnet(depth, w_0, w_a, w_m, group_width, se_ratio=None):
        layers, width = [ConvNormAct(3, 32, 3, 2)], 32
        for out, n, g in regnet_stages(torch, depth, w_0, w_a, w_m, group_width):
            for i in range(n):
                layers.append(RegNetBlock(width, out, 2 if i == 0 else 1, g, se_ratio))
                width = out
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                             nn.Linear(width, 1000))

    # MobileNet v3 -------------------------------------------------------------------
    class MobileNetV3Block(nn.Module):
        def __init__(self, cin, k, exp, cout, se, act, stride):
            super().__init__()
            act = nn.Hardswish if act == "HS" else nn.ReLU
            norm = lambda c: nn.BatchNorm2d(c, eps=0.001, momentum=0.01)  # noqa: E731
            layers = []
            if exp != cin:
                layers.append(ConvNormAct(cin, exp, 1, act=act, norm=norm))
            layers.append(ConvNormAct(exp, exp, k, stride, groups=exp, act=act, norm=norm))
            if se:
                layers.append(SqueezeExcitation(exp, make_divisible(exp // 4, 8),
                                                scale=nn.Hardsigmoid))
            layers.append(ConvNormAct(exp, cout, 1, act=None, norm=norm))
            self.block = nn.Sequential(*layers)
            self.use_res = stride == 1 and cin == cout

        def forward(self, x):
            y = self.block(x)
            return y + x if self.use_res else y

    def mobilenet_v3(small):
        if small:
            setting = [(16, 3, 16, 16, True, "RE", 2), (16, 3, 72, 24, False, "RE", 2),
                       (24, 3, 88, 24, False, "RE", 1), (24, 5, 96, 40, True, "HS", 2),
                       (40, 5, 240, 40, True, "HS", 1), (40, 5, 240, 40, True, "HS", 1),
                       (40, 5, 120, 48, True, "HS", 1), (48, 5, 144, 48, True, "HS", 1),
                       (48, 5, 288, 96, True, "HS", 2), (96, 5, 576, 96, True, "HS", 1),
                       (96, 5, 576, 96, True, "HS", 1)]
            last = 1024
        else:
            setting = [(16, 3, 16, 16, False, "RE", 1), (16, 3, 64, 24, False, "RE", 2),
                       (24, 3, 72, 24, False, "RE", 1), (24, 5, 72, 40, True, "RE", 2),
                       (40, 5, 120, 40, True, "RE", 1), (40, 5, 120, 40, True, "RE", 1),
                       (40, 3, 240, 80, False, "HS", 2), (80, 3, 200, 80, False, "HS", 1),
                       (80, 3, 184, 80, False, "HS", 1), (80, 3, 184, 80, False, "HS", 1),
                       (80, 3, 480, 112, True, "HS", 1), (112, 3, 672, 112, True, "HS", 1),
                       (112, 5, 672, 160, True, "HS", 2), (160, 5, 960, 160, True, "HS", 1),
                       (160, 5, 960, 160, True, "HS", 1)]
            last = 1280
        norm = lambda c: nn.BatchNorm2d(c, eps=0.001, momentum=0.01)  # noqa: E731
        layers = [ConvNormAct(3, 16, 3, 2, act=nn.Hardswish, norm=norm)]
        layers += [MobileNetV3Block(*cfg) for cfg in setting]
        cout = setting[-1][3]
        layers.append(ConvNormAct(cout, 6 * cout, 1, act=nn.Hardswish, norm=norm))
        return nn.Sequential(nn.Sequential(*layers), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(1), nn.Linear(6 * cout, last), nn.Hardswish(),
                             nn.Dropout(0.2), nn.Linear(last, 1000))

    # EfficientNet-B0 ------------------------------------------------------------------
    class MBConv(nn.Module):
        def __init__(self, t, k, stride, cin, cout):
            super().__init__()
            exp = make_divisible(cin * t, 8)
            layers = []
            if exp != cin:
                layers.append(ConvNormAct(cin, exp, 1, act=nn.SiLU))
            layers += [ConvNormAct(exp, exp, k, stride, groups=exp, act=nn.SiLU),
                       SqueezeExcitation(exp, max(1, cin // 4), act=nn.SiLU),
                       ConvNormAct(exp, cout, 1, act=None)]
            self.block = nn.Sequential(*layers)
            self.use_res = stride == 1 and cin == cout

        def forward(self, x):
            y = self.block(x)
            return y + x if self.use_res else y

    def efficientnet_b0():
        setting = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2),
                   (6, 3, 2, 40, 80, 3), (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4),
                   (6, 3, 1, 192, 320, 1)]
        layers = [ConvNormAct(3, 32, 3, 2, act=nn.SiLU)]
        for t, k, s, cin, cout, n in setting:
            layers.append(nn.Sequential(*[MBConv(t, k, s if i == 0 else 1,
                                                 cin if i == 0 else cout, cout)
                                          for i in range(n)]))
        layers.append(ConvNormAct(320, 1280, 1, act=nn.SiLU))
        return nn.Sequential(nn.Sequential(*layers), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(1), nn.Dropout(0.2), nn.Linear(1280, 1000))

    # ShuffleNet v2 -----------------------------------------------------------------
    def channel_shuffle(x, groups):
        n, c, h, w = x.size()
        x = x.view(n, groups, c // groups, h, w).transpose(1, 2).contiguous()
        return x.view(n, -1, h, w)

    class ShuffleBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.stride = stride
            b = cout // 2
            if stride > 1:
                self.branch1 = nn.Sequential(
                    nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
                    nn.BatchNorm2d(cin), nn.Conv2d(cin, b, 1, bias=False),
                    nn.BatchNorm2d(b), nn.ReLU())
            self.branch2 = nn.Sequential(
                nn.Conv2d(cin if stride > 1 else b, b, 1, bias=False),
                nn.BatchNorm2d(b), nn.ReLU(),
                nn.Conv2d(b, b, 3, stride, 1, groups=b, bias=False), nn.BatchNorm2d(b),
                nn.Conv2d(b, b, 1, bias=False), nn.BatchNorm2d(b), nn.ReLU())

        def forward(self, x):
            if self.stride == 1:
                x1, x2 = x.chunk(2, dim=1)
                out = torch.cat((x1, self.branch2(x2)), dim=1)
            else:
                out = torch.cat((self.branch1(x), self.branch2(x)), dim=1)
            return channel_shuffle(out, 2)

    class ShuffleNetV2(nn.Module):
        def __init__(self, repeats=(4, 8, 4), widths=(24, 116, 232, 464, 1024)):
            super().__init__()
            self.conv1 = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False),
                                       nn.BatchNorm2d(widths[0]), nn.ReLU())
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            stages, cin = [], widths[0]
            for n, cout in zip(repeats, widths[1:4]):
                stages += [ShuffleBlock(cin, cout, 2)]
                stages += [ShuffleBlock(cout, cout, 1) for _ in range(n - 1)]
                cin = cout
            self.stages = nn.Sequential(*stages)
            self.conv5 = nn.Sequential(nn.Conv2d(cin, widths[4], 1, bias=False),
                                       nn.BatchNorm2d(widths[4]), nn.ReLU())
            self.fc = nn.Linear(widths[4], 1000)

        def forward(self, x):
            x = self.conv5(self.stages(self.maxpool(self.conv1(x))))
            return self.fc(x.mean([2, 3]))

    # ConvNeXt-T ------------------------------------------------------------------------
    class LayerNorm2d(nn.LayerNorm):
        def forward(self, x):
            x = x.permute(0, 2, 3, 1)
            x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
            return x.permute(0, 3, 1, 2)

    class CNBlock(nn.Module):
        def __init__(self, dim):
            super().__init__()
            self.dwconv = nn.Conv2d(dim, dim, 7, padding=3, groups=dim)
            self.norm = nn.LayerNorm(dim, eps=1e-6)
            self.pwconv1 = nn.Linear(dim, 4 * dim)
            self.pwconv2 = nn.Linear(4 * dim, dim)
            self.layer_scale = nn.Parameter(torch.ones(dim, 1, 1) * 1e-6)

        def forward(self, x):
            y = self.dwconv(x).permute(0, 2, 3, 1)
            y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y)))).permute(0, 3, 1, 2)
            return self.layer_scale * y + x

    def convnext_tiny():
        layers = [nn.Sequential(nn.Conv2d(3, 96, 4, 4), LayerNorm2d(96, eps=1e-6))]
        for cin, cout, n in ((96, 192, 3), (192, 384, 3), (384, 768, 9), (768, None, 3)):
            layers.append(nn.Sequential(*[CNBlock(cin) for _ in range(n)]))
            if cout is not None:
                layers.append(nn.Sequential(LayerNorm2d(cin, eps=1e-6),
                                            nn.Conv2d(cin, cout, 2, 2)))
        return nn.Sequential(nn.Sequential(*layers), nn.AdaptiveAvgPool2d(1),
                             LayerNorm2d(768, eps=1e-6), nn.Flatten(1),
                             nn.Linear(768, 1000))

    # U-Net (Ronneberger et al. 2015) ---------------------------------------------
    def double_conv(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3), nn.ReLU(),
                             nn.Conv2d(cout, cout, 3), nn.ReLU())

    def center_crop(x, size):
        dh, dw = (x.shape[2] - size[0]) // 2, (x.shape[3] - size[1]) // 2
        return x[:, :, dh:dh + size[0], dw:dw + size[1]]

    class UNet(nn.Module):
        def __init__(self, cin=1, classes=2, widths=(64, 128, 256, 512, 1024)):
            super().__init__()
            self.down = nn.ModuleList()
            c = cin
            for w in widths:
                self.down.append(double_conv(c, w))
                c = w
            self.up = nn.ModuleList()
            self.dec = nn.ModuleList()
            for w in reversed(widths[:-1]):
                self.up.append(nn.ConvTranspose2d(c, w, 2, 2))
                self.dec.append(double_conv(2 * w, w))
                c = w
            self.head = nn.Conv2d(c, classes, 1)

        def forward(self, x):
            skips = []
            for i, block in enumerate(self.down):
                x = block(x)
                if i < len(self.down) - 1:
                    skips.append(x)
                    x = F.max_pool2d(x, 2)
            for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
                x = up(x)
                x = dec(torch.cat([center_crop(skip, x.shape[2:]), x], 1))
            return self.head(x)

    return {
        "squeezenet1_0": lambda: squeezenet("1_0"),
        "squeezenet1_1": lambda: squeezenet("1_1"),
        "regnet_x_400mf": lambda: regnet(22, 24, 24.48, 2.54, 16),
        "regnet_y_400mf": lambda: regnet(16, 48, 27.89, 2.09, 8, 0.25),
        "mobilenet_v3_large": lambda: mobilenet_v3(small=False),
        "mobilenet_v3_small": lambda: mobilenet_v3(small=True),
        "efficientnet_b0": efficientnet_b0,
        "shufflenet_v2_x1_0": ShuffleNetV2,
        "convnext_tiny": convnext_tiny,
        "unet": UNet,
    }
