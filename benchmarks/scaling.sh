#!/usr/bin/env bash
# Scaling run on a many-core machine, in two parts that can run apart:
#
#   bash benchmarks/scaling.sh tests OUTDIR   # build in place, kernel tests on every core
#   bash benchmarks/scaling.sh bench OUTDIR   # benchmarks at 1, 4 and every core
#
# 'tests' builds the extensions in place and runs the kernel tests with
# OMP_NUM_THREADS set to the core count (so that every call without
# n_threads uses them all). 'bench' times every conv layer of the built-in
# networks against PyTorch and ONNX Runtime at every core (forward at batch
# 8 and 32, forward and backward at batch 8), ResNet-50 at 1 and 4 threads
# for its scaling, and template matching against OpenCV at 2 threads and
# every core. Markdown tables (and the first run's JSON) land in OUTDIR.
# PYTHON picks the interpreter (default python3), THREADS the core count
# (default nproc); QUICK=1 makes every benchmark a smoke run.
set -u
part=${1:?usage: scaling.sh tests|bench OUTDIR}
out=${2:-scaling}
py=${PYTHON:-python3}
T=${THREADS:-$(nproc)}
quick=${QUICK:+--quick}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

run() {  # run NAME SECONDS CMD...: output to OUTDIR/NAME.txt, a line on stdout
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    timeout "$limit" "$@" > "$out/$name.txt" 2>&1
    echo "$name: exit $? in $((SECONDS - start)) s"
}

case $part in
tests)
    run build 240 $py setup.py build_ext --inplace -j "$T"
    tail -3 "$out/build.txt"
    OMP_NUM_THREADS=$T run tests 300 $py -m pytest -q -p no:cacheprovider \
        tests/test_conv.py tests/test_pool.py tests/test_signal.py tests/test_workspace.py
    tail -3 "$out/tests.txt"
    ;;
bench)
    nets=$out/networks
    run "networks-$T" 300 $py benchmarks/bench_networks.py $quick --threads "$T" --batch 8,32 \
        --no-backward --json "$nets-$T.json"
    for t in 1 4; do
        run "networks-$t" 120 $py benchmarks/bench_networks.py $quick --threads "$t" \
            --batch 8 --nets resnet50 --no-backward
    done
    run "networks-$T-backward" 150 $py benchmarks/bench_networks.py $quick --threads "$T" \
        --batch 8 --nets resnet50,mobilenet_v2,googlenet
    for t in 2 "$T"; do
        run "signal-$t" 120 $py benchmarks/bench_signal.py $quick --threads "$t" --only match
    done
    grep -h -A 12 "^## batch" "$out"/networks-*.txt | grep "^| [a-z]" | head -40
    ;;
*)
    echo "unknown part: $part" >&2
    exit 2
    ;;
esac
