"""
The roofline of ResNet-50 and MobileNet v2
==========================================

A layer cannot run faster than its arithmetic allows (its FLOPs over the
machine's peak rate) nor faster than its data allows (the bytes it moves over
the memory bandwidth). :func:`pyconvnet.shapes.measure_machine` measures both
limits on this machine, through pyconvnet's own convolution, in about a
second; :func:`pyconvnet.shapes.summary` with ``machine=`` then predicts each
layer's time as the larger of the two, and says which one binds. The model is
derived in :ref:`theory-roofline`.

Here the convolutions of ResNet-50 and MobileNet v2 are drawn as points on
the roofline, at their arithmetic intensity, and their predicted times are
compared with the times pyconvnet's kernels take.
"""
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pyconvnet.functional import conv2d
from pyconvnet.shapes import measure_machine, summary

plt.switch_backend("Agg")   # no window: the figures are saved
OUTPUT = Path("examples", "output") if Path("examples").is_dir() else Path("output")
OUTPUT.mkdir(parents=True, exist_ok=True)

# %%
# This machine's two limits
# -------------------------
# The peak is what pyconvnet's convolution reaches on a large 3x3 layer, not
# the processor's data-sheet figure: it is the roof that bounds these
# kernels. The bandwidth is that of copying 64 MiB. Their ratio, the ridge
# point, is the arithmetic intensity (FLOPs per byte) a layer needs to be
# limited by arithmetic rather than by memory.

machine = measure_machine()
print(machine)

# %%
# Every layer on the roofline
# ---------------------------
# One image at a time, as in inference. The roofline table gives each layer's
# FLOPs, bytes, intensity, predicted time and bound; here are the first rows
# of ResNet-50's.

BATCH = 1
nets = {name: summary(name, batch_size=BATCH, machine=machine)
        for name in ("resnet50", "mobilenet_v2")}
table = nets["resnet50"].to_text().split("\n\nRoofline")[1].splitlines()
print("\n".join(["Roofline" + table[0]] + table[1:12]))
for name, s in nets.items():
    compute = sum(r.predicted_time for r in s.rows if r.bound == "compute")
    print(f"{name}: predicted {s.predicted_time * 1e3:.1f} ms per image, "
          f"{compute / s.predicted_time:.0%} of it in compute-bound layers")

# %%
# Predicted and measured times of the convolutions
# ------------------------------------------------
# Each distinct convolution (same input shape and configuration) is timed
# once through :func:`pyconvnet.functional.conv2d`, best of three runs, and
# compared with its prediction. A ratio above 1 means the kernel is slower
# than the roofline allows.


def time_conv(row, rng):
    cfg = row.layer.config
    cin = row.input_shape[0]
    x = rng.standard_normal((BATCH,) + row.input_shape).astype(np.float32)
    k = cfg["kernel_size"]
    k = k if isinstance(k, tuple) else (k, k)
    w = rng.standard_normal((cfg["out_channels"], cin // cfg["groups"]) + k
                            ).astype(np.float32)
    b = np.zeros(cfg["out_channels"], np.float32) if cfg["bias"] else None

    def run():
        conv2d(x, w, b, stride=cfg["stride"], padding=cfg["padding"],
               dilation=cfg["dilation"], groups=cfg["groups"])

    run()
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - t0)
    return best


rng = np.random.default_rng(0)
points = {}
for name, s in nets.items():
    seen, rows = {}, []
    for r in s.rows:
        if r.kind != "conv":
            continue
        key = (r.input_shape, tuple(sorted((k, str(v)) for k, v in r.layer.config.items())))
        if key not in seen:
            seen[key] = time_conv(r, rng)
        rows.append((r, seen[key]))
    points[name] = rows
    ratios = np.array([t / r.predicted_time for r, t in rows])
    worst = rows[int(np.argmax(ratios))][0]
    print(f"{name}: {len(rows)} convolutions ({len(seen)} distinct), measured / "
          f"predicted median {np.median(ratios):.2f}, best {ratios.min():.2f}, "
          f"worst {ratios.max():.2f} ({worst.name}, {worst.bound}-bound, "
          f"groups={worst.layer.config['groups']})")
    total = sum(t for _, t in rows)
    predicted = sum(r.predicted_time for r, _ in rows)
    print(f"   all convolutions: measured {total * 1e3:.1f} ms, predicted "
          f"{predicted * 1e3:.1f} ms")

# %%
# The figure
# ----------
# The roof is ``min(peak, bandwidth x intensity)``: a sloped part for
# memory-bound layers and a flat part for compute-bound ones. Hollow markers
# are the predictions (on the roof by construction), filled ones the rates
# pyconvnet's kernels reach. MobileNet v2's depthwise convolutions sit far to
# the left: few FLOPs per byte, memory-bound whatever the kernel does.

fig, ax = plt.subplots(figsize=(7.5, 5))
intensity = np.logspace(-1, 3, 200)
ax.loglog(intensity, np.minimum(machine.peak_flops, machine.bandwidth * intensity) / 1e9,
          "k-", lw=2, label="roofline")
ax.axvline(machine.ridge, color="0.6", ls=":", lw=1)
for (name, rows), color in zip(points.items(), ("tab:blue", "tab:orange")):
    ai = np.array([r.arithmetic_intensity for r, _ in rows])
    flops = np.array([2 * r.macs * BATCH for r, _ in rows])
    measured = flops / np.array([t for _, t in rows]) / 1e9
    ax.scatter(ai, measured, s=18, color=color, label=f"{name} (measured)")
    ax.scatter(ai, flops / np.array([r.predicted_time for r, _ in rows]) / 1e9,
               s=30, facecolors="none", edgecolors=color, lw=0.8,
               label=f"{name} (predicted)")
ax.set_xlabel("arithmetic intensity (FLOP/byte)")
ax.set_ylabel("GFLOP/s")
ax.set_title("Convolutions of ResNet-50 and MobileNet v2, batch 1")
ax.legend(fontsize=8, loc="lower right")
ax.grid(True, which="both", alpha=0.2)
fig.tight_layout()
fig.savefig(OUTPUT / "roofline.png", dpi=120)
print("saved", OUTPUT / "roofline.png")
