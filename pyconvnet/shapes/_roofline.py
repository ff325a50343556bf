"""The roofline model: this machine's peak arithmetic rate and memory
bandwidth, measured in a second or so, and the time each layer would take
if it reached the lower of the two limits."""
import dataclasses
import time

import numpy as np

from .._validation import check_n_threads

__all__ = ["Machine", "measure_machine"]


@dataclasses.dataclass(frozen=True)
class Machine:
    """Peak rates of a machine, for predicting layer times (the roofline).

    Attributes
    ----------
    peak_flops : float
        Floating-point operations per second (2 per multiply-add).
    bandwidth : float
        Bytes per second between memory and the cores.
    n_threads : int or None
        The thread count the rates were measured with.
    dtype : str
        The element type they were measured with.
    description : str
        How they were measured.

    Notes
    -----
    Derived in :ref:`theory-roofline`.

    A layer that performs :math:`F` FLOPs and moves :math:`B` bytes takes at
    least :math:`\\max(F / P, B / W)` seconds on a machine of peak rate
    :math:`P` and bandwidth :math:`W`. It is compute-bound when its
    arithmetic intensity :math:`F / B` exceeds the ridge point :math:`P / W`,
    memory-bound otherwise.

    Examples
    --------
    >>> m = Machine(peak_flops=100e9, bandwidth=20e9)
    >>> m.ridge
    5.0
    >>> m.predict(flops=1e9, bytes_moved=1e6)
    (0.01, 'compute')
    >>> m.predict(flops=1e6, bytes_moved=1e8)
    (0.005, 'memory')
    """

    peak_flops: float
    bandwidth: float
    n_threads: object = None
    dtype: str = "float32"
    description: str = "given"

    def __post_init__(self):
        for name in ("peak_flops", "bandwidth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) \
                    or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    @property
    def ridge(self):
        """Arithmetic intensity (FLOP/byte) where the two limits meet."""
        return self.peak_flops / self.bandwidth

    def predict(self, flops, bytes_moved):
        """(seconds, ``"compute"`` or ``"memory"``) of work ``flops`` moving
        ``bytes_moved`` bytes."""
        compute = flops / self.peak_flops
        memory = bytes_moved / self.bandwidth
        return max(compute, memory), "compute" if compute >= memory else "memory"

    def __str__(self):
        return (f"peak {self.peak_flops / 1e9:.1f} GFLOP/s, bandwidth "
                f"{self.bandwidth / 1e9:.1f} GB/s, ridge {self.ridge:.1f} FLOP/byte "
                f"({self.dtype}, {self.n_threads} threads)")


def _best(fn, repeats, budget):
    """Fastest of ``repeats`` calls of ``fn`` (after one warm-up), stopping
    early once ``budget`` seconds are spent."""
    fn()
    best = float("inf")
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if time.perf_counter() - start > budget:
            break
    return best


def measure_machine(*, n_threads=None, dtype="float32", repeats=5, budget=2.0):
    """Measure this machine's peak FLOP/s and memory bandwidth.

    The peak rate is that of pyconvnet's own convolution
    (:func:`pyconvnet.functional.conv2d`) on a layer large enough to be
    compute-bound (a 3x3 convolution from 128 to 128 channels on a batch of
    8 maps of 28x28, 0.93 GFLOPs); the bandwidth is that of a copy of a
    64 MiB array, counted as read plus written bytes, as the STREAM
    benchmark's copy does. Each is the best of ``repeats`` runs after a
    warm-up. It takes about a second; nothing is measured on import.

    Parameters
    ----------
    n_threads : int or None
        Threads for the convolution (None: the package default).
    dtype : {'float32', 'float64'}
        Element type of the convolution.
    repeats : int
        Timed runs of each measurement.
    budget : float
        Seconds after which each measurement stops repeating.

    Returns
    -------
    Machine

    See Also
    --------
    summary : with ``machine=``, predicts each layer's time.

    Notes
    -----
    Derived in :ref:`theory-roofline`.

    The peak is what pyconvnet's kernels reach, not the hardware's
    theoretical peak: it is the roof that predicts their times.

    Examples
    --------
    >>> m = measure_machine(repeats=2)          # doctest: +SKIP
    >>> print(m)                                 # doctest: +SKIP
    peak 61.3 GFLOP/s, bandwidth 9.8 GB/s, ridge 6.3 FLOP/byte (float32, 2 threads)
    """
    from ..functional import conv2d    # the kernels load only when measuring

    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    threads = check_n_threads(n_threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 128, 28, 28)).astype(dtype)
    w = rng.standard_normal((128, 128, 3, 3)).astype(dtype)
    flops = 2 * 8 * 128 * 128 * 9 * 28 * 28
    seconds = _best(lambda: conv2d(x, w, padding=1, n_threads=threads), repeats, budget)
    src = np.ones(64 * 2 ** 20 // 8)
    dst = np.empty_like(src)
    copy = _best(lambda: np.copyto(dst, src), repeats, budget)
    return Machine(peak_flops=flops / seconds, bandwidth=2 * src.nbytes / copy,
                   n_threads=threads, dtype=str(dtype),
                   description="pyconvnet.functional.conv2d 128->128 3x3 on "
                               "8x128x28x28; copy of 64 MiB")
