#!/usr/bin/env bash
# The GPU check, in one go, on a machine with a CUDA GPU: the device tests, then the paper-scale round
# benchmark. Needs only python3 with PyTorch, pandas, PyYAML, click and pytest (no Snakemake, no mlxtend,
# no network): data are synthetic tensors of the real shapes.
#
#   bash benchmarks/device_check.sh OUTDIR
#
# Writes into OUTDIR: env.txt (GPU, driver, versions), check.log (everything printed), tests.xml (JUnit),
# round_speed_conv.csv, round_speed_resnet.csv, round_speed_tf32.csv, round_speed_bf16.csv (every timed
# round, as benchmarks/round_speed.py writes them), cuda_vs_cpu.txt (how far a CUDA round lands from the CPU's,
# in float32 and float64). Each step has its own time limit, so that one slow step cannot cost the others; the
# limits, set from the first run on an H200 (benchmarks/gpu/README.md: a paper-scale round takes 5-33 s there),
# add up to 8 minutes, which leaves a 15-minute device lease room to rerun the steps that failed;
# round_speed.py writes its CSV after every round, so a step stopped by its limit keeps the rounds it finished.
set -u
out=${1:?usage: bash benchmarks/device_check.sh OUTDIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONPATH=src PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
log="$out/check.log"
status=0

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log it, remember a failure
    local name=$1 limit=$2
    shift 2
    echo "==== $name (limit ${limit}s): $*" | tee -a "$log"
    local start=$SECONDS
    timeout "$limit" "$@" 2>&1 | tee -a "$log"
    local rc=${PIPESTATUS[0]}
    echo "==== $name: exit $rc after $((SECONDS - start)) s" | tee -a "$log"
    [ "$rc" -eq 0 ] || status=1
}

{
    date -u
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
    python3 -c 'import torch, sys; print("python", sys.version.split()[0], "torch", torch.__version__,
"cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version(), "gpu", torch.cuda.get_device_name(0))'
    git rev-parse HEAD 2>/dev/null || true
} >"$out/env.txt" 2>&1
cat "$out/env.txt" | tee -a "$log"

step tests 80 python3 -m pytest -q -p no:cacheprovider --junitxml="$out/tests.xml" \
    tests/test_device.py "tests/test_data.py::test_augment_batch_on_cuda_matches_cpu"

# HETEROFL_CHECK_DEVICE / HETEROFL_CHECK_SCALE let the script itself be tried on a CPU with small sizes
read -r -a scale <<<"${HETEROFL_CHECK_SCALE:---paper-scale}"
bench=(python3 benchmarks/round_speed.py --device "${HETEROFL_CHECK_DEVICE:-cuda}" "${scale[@]}" --methods heterofl)
step cuda-vs-cpu 70 bash -c "set -o pipefail; { python3 benchmarks/cuda_vs_cpu.py --cases resnet,conv --float64 &&
    python3 benchmarks/cuda_vs_cpu.py --cases resnet; } 2>&1 | tee '$out/cuda_vs_cpu.txt'"

step bench-conv 110 "${bench[@]}" --workloads conv-a1,conv-fix5 --engines sequential,batched --rounds 1 \
    --csv "$out/round_speed_conv.csv"
step bench-resnet 140 "${bench[@]}" --workloads resnet-fix5 --engines sequential,batched --rounds 1 \
    --csv "$out/round_speed_resnet.csv"
step bench-tf32 45 "${bench[@]}" --workloads conv-a1 --engines batched --rounds 1 --precision tf32 \
    --csv "$out/round_speed_tf32.csv"
step bench-bf16 60 "${bench[@]}" --workloads conv-a1 --engines sequential --rounds 1 --precision bf16 \
    --csv "$out/round_speed_bf16.csv"

echo "device check finished with status $status" | tee -a "$log"
exit "$status"
