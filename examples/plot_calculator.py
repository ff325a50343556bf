"""
A shape and cost calculator session
===================================

:mod:`pyconvnet.shapes` answers the questions one asks when designing a
network, without building it: how large is the output of a layer, how many
weights does it have, how many multiply-adds does it cost, and where in a
network do the parameters and the arithmetic go. The formulas are derived in
:ref:`theory-conv-layer`.
"""
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from pyconvnet.shapes import (compare_bottleneck, compare_depthwise_separable,
                              conv_macs, conv_output_size, conv_params,
                              receptive_field, summary)

plt.switch_backend("Agg")   # no window: the figures are saved
OUTPUT = Path("examples", "output") if Path("examples").is_dir() else Path("output")
OUTPUT.mkdir(parents=True, exist_ok=True)

# %%
# Output sizes, with the arithmetic
# ---------------------------------
# ``explain=True`` prints the formula (N + 2P - F)/S + 1 with the numbers
# filled in, and says when a stride does not fit.

print(conv_output_size(5, 3, stride=2, padding=1, explain=True))
print()
print(conv_output_size(32, 5, padding=2, explain=True))
print()
print(conv_output_size(7, 3, stride=3, explain=True))
print()
print(conv_output_size((224, 224), 3, stride=1, padding=2, dilation=2, explain=True))

# %%
# Parameters and multiply-adds of one layer
# -----------------------------------------
# Ten 5x5 filters on a 32x32x3 image: 10 * (3 * 5 * 5) + 10 parameters, and
# one dot product of length 75 for each of the 10 * 32 * 32 outputs.

print("parameters:", conv_params(3, 10, 5))
print("MACs:      ", conv_macs(3, 10, 5, 32))

# %%
# Cheaper designs for the same layer
# ----------------------------------

print(compare_bottleneck(256, 64, 3, output_size=56))
print()
print(compare_depthwise_separable(128, 128, 3, output_size=56))

# %%
# A whole network
# ---------------
# The summary of LeNet-5 lists every layer's output shape, parameters,
# MACs, receptive field and activation memory.

print(summary("lenet5"))
print()
print(receptive_field([(3, 1, 1), (3, 1, 1), (2, 2), (3, 1, 1), (3, 1, 1), (2, 2)]))

# %%
# Where AlexNet's parameters and arithmetic go
# --------------------------------------------
# One bar pair per layer with weights: the convolutions hold few parameters
# but do most of the multiply-adds; the fully connected layers the reverse.

s = summary("alexnet")
rows = [r for r in s.rows if r.params]
names = [r.name for r in rows]
params = np.array([r.params for r in rows], dtype=float)
macs = np.array([r.macs for r in rows], dtype=float)
print(f"AlexNet: {s.total_params:,} parameters, {s.total_macs:,} MACs")
for r in rows:
    print(f"  {r.name:13s} {r.kind:7s} {r.params / s.total_params:6.1%} of the parameters, "
          f"{r.macs / s.total_macs:6.1%} of the MACs")

fig, ax = plt.subplots(figsize=(10, 4.5))
pos = np.arange(len(rows))
ax.bar(pos - 0.2, 100 * params / params.sum(), width=0.4, label="share of parameters")
ax.bar(pos + 0.2, 100 * macs / macs.sum(), width=0.4, label="share of MACs")
ax.set_xticks(pos, names, rotation=30, ha="right")
ax.set_ylabel("percent of the network's total")
ax.set_title("AlexNet: parameters live in the FC layers, arithmetic in the convolutions")
ax.legend()
fig.tight_layout()
fig.savefig(OUTPUT / "calculator_alexnet.png", dpi=100)
