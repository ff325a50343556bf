"""Compiled kernels. Private: call them through the public wrappers.

Before the first kernel loads the OpenMP runtime, idle OpenMP threads are
told to stop busy-waiting soon (``GOMP_SPINCOUNT=10000``, a few
microseconds) instead of GNU OpenMP's default of spinning much longer: the
kernels alternate with FFT and BLAS threads, which otherwise find both cores
taken by idle spinners (measured: a 512x512 similarity map took 20 ms
instead of 6 ms). Setting ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` yourself
overrides this.
"""
import os

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["GOMP_SPINCOUNT"] = "10000"
