#!/usr/bin/env bash
# Scaling run on a many-core machine:
#
#   bash benchmarks/scaling.sh OUTDIR
#
# builds the extensions in place, runs the kernel tests with OMP_NUM_THREADS
# set to the core count (every call without n_threads then uses them all),
# then times every conv layer of the built-in networks against PyTorch and
# ONNX Runtime on every core (forward at batch 8 and 32), ResNet-50 on 1 and
# 4 threads for its scaling, template matching against OpenCV on every core,
# and forward plus backward on every core, in that order. Each step's output
# lands in OUTDIR/STEP.txt (the first benchmark also writes JSON).
#
# PYTHON picks the interpreter (default python3), THREADS the core count
# (default nproc), BUDGET the seconds the whole run may take (default
# 3600: steps are cut short, or skipped, to end within it), QUICK=1 makes
# every benchmark a smoke run.
set -u
out=${1:-scaling}
py=${PYTHON:-python3}
T=${THREADS:-$(nproc)}
budget=${BUDGET:-3600}
quick=${QUICK:+--quick}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

run() {  # run NAME SECONDS CMD...: at most SECONDS (and what the budget has left)
    local name=$1 limit=$2 start=$SECONDS
    shift 2
    local left=$((budget - SECONDS - 5))
    if [ "$left" -lt 15 ]; then
        echo "$name: skipped (budget spent)"
        return
    fi
    [ "$limit" -gt "$left" ] && limit=$left
    timeout "$limit" "$@" > "$out/$name.txt" 2>&1
    echo "$name: exit $? in $((SECONDS - start)) s"
}

run build 240 $py setup.py build_ext --inplace -j "$T"
tail -2 "$out/build.txt"
OMP_NUM_THREADS=$T run tests 200 $py -m pytest -q -p no:cacheprovider -x \
    tests/test_conv.py tests/test_pool.py tests/test_workspace.py
tail -2 "$out/tests.txt"
run "networks-$T" 240 $py benchmarks/bench_networks.py $quick --threads "$T" \
    --batch 8,32 --no-backward --json "$out/networks-$T.json"
for t in 1 4; do
    run "networks-$t" 120 $py benchmarks/bench_networks.py $quick --threads "$t" \
        --batch 8 --nets resnet50 --no-backward
done
run "signal-$T" 90 $py benchmarks/bench_signal.py $quick --threads "$T" --only match
run "networks-$T-backward" 150 $py benchmarks/bench_networks.py $quick --threads "$T" \
    --batch 8 --nets resnet50,mobilenet_v2,googlenet
grep -h -A 12 "^## batch" "$out"/networks-*.txt | grep "^| [a-z]"
