"""In-memory similarity_map against pyconvnet.dask on 1 and 2 worker processes.

    python benchmarks/bench_dask.py [--size 8192] [--template 32] [--chunk 2048]

The in-memory call uses every core (n_threads=None); each Dask worker runs
one thread, and each chunk's kernel one thread. Times are medians; the Dask
times include scheduling and moving the chunks' results back, but not
starting the cluster.
"""
import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import markdown_table, median_time  # noqa: E402

from pyconvnet.signal import similarity_map  # noqa: E402

try:
    import dask.array as da
    from distributed import Client, LocalCluster

    from pyconvnet import dask as pdask
except ImportError:
    da = None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=8192)
    parser.add_argument("--template", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    image = rng.random((args.size, args.size))
    template = image[100:100 + args.template, 200:200 + args.template].copy()

    in_memory = median_time(lambda: similarity_map(image, template, centered=True),
                            args.repeat)
    rows = [["in memory (pyconvnet.signal)", "-", f"{in_memory:.2f}", "1.00x"]]
    if da is None:
        rows.append(["pyconvnet.dask", "missing (pip install 'dask[array]' distributed)", "", ""])
    else:
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                              host="127.0.0.1", dashboard_address=None) as cluster, \
                    Client(cluster) as client:
                lazy_image = da.from_array(image, chunks=args.chunk)
                lazy_image = client.persist(lazy_image)  # data on the workers first

                def run():
                    lazy = pdask.similarity_map(lazy_image, template, centered=True)
                    return client.compute(lazy.max(), sync=True)

                seconds = median_time(run, args.repeat)
            rows.append([f"pyconvnet.dask, {workers} worker(s) x 1 thread",
                         f"{args.chunk}x{args.chunk}", f"{seconds:.2f}",
                         f"{in_memory / seconds:.2f}x"])
    print(f"similarity_map(centered=True), {args.size}x{args.size} float64 image, "
          f"{args.template}x{args.template} template; seconds (median of {args.repeat})\n")
    print(markdown_table(["how", "chunks", "time (s)", "speed vs in memory"], rows))


if __name__ == "__main__":
    main()
