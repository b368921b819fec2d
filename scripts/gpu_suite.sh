#!/usr/bin/env bash
# Everything the project measures on a GPU, in one go (at most 12 minutes on one GPU): the CUDA tests
# (`pytest -m gpu`), SimCLR throughput (augmentation in workers vs on the device, fp32 / bf16, compile; data
# wait), NT-Xent vs lightly, NCE / sampled softmax at 10^4 ... 10^7 classes, and word2vec's batched path.
# Writes one results file, gpu_results.md, in OUT_DIR (default: the current directory).
#
#   scripts/gpu_suite.sh [OUT_DIR]             # on a machine with CUDA
#   scripts/gpu_suite.sh --dry-run [OUT_DIR]   # on a CPU: every step with tiny sizes, the tests on the CPU
#   ONLY='tests|word2vec' scripts/gpu_suite.sh  # only the steps whose names match
#
# Needs python with torch, pytorch-lightning, hydra-core, pytest (lightly optional). Wheels in ./wheels
# (hydra-core, omegaconf, antlr4-python3-runtime, lightly) are installed first when hydra is missing.
set -uo pipefail
cd "$(dirname "$0")/.."
dry=0
if [ "${1:-}" = "--dry-run" ]; then dry=1; shift; fi
out="${1:-.}"
mkdir -p "$out"
res="$out/gpu_results.md"
py="${PYTHON:-python3}"
if ! "$py" -c "import hydra" 2>/dev/null && ls wheels/*.whl >/dev/null 2>&1; then
    site=$(mktemp -d)
    "$py" -m pip install -q --no-index --no-deps --target "$site" wheels/*.whl || exit 1
    export PYTHONPATH="$site:${PYTHONPATH:-}"
fi
export PYTHONPATH=".:scripts:${PYTHONPATH:-}" PYTHONUNBUFFERED=1 PYTHONWARNINGS=ignore
failed=()

step() {  # step NAME SECONDS COMMAND...: run with a time limit, append its output to the results file
    local name=$1 limit=$2; shift 2
    if [ -n "${ONLY:-}" ] && ! grep -qiE "$ONLY" <<<"$name"; then return; fi  # ONLY='tests|SimCLR': a rerun
    local t0=$SECONDS
    echo "## $name" >>"$res"; echo '```' >>"$res"
    timeout "$limit" "$@" 2>&1 | tee -a "$res"
    local rc=${PIPESTATUS[0]}
    echo '```' >>"$res"
    echo "($name: exit $rc, $((SECONDS - t0)) s; command: $*)" | tee -a "$res"; echo >>"$res"
    [ "$rc" -eq 0 ] || failed+=("$name")
}

if [ $dry -eq 1 ]; then
    dev=cpu; export GPU_SUITE_DEVICE=cpu
    simclr=(--device cpu --batch 32 --steps 1 --workers 1 --configs cpu:fp32:eager,device:bf16:eager)
    infonce=(--device cpu --batches 64 --repeats 1)
    sampled=(--device cpu --vocabs 1000,10000 --repeats 2 --full-max 1000)
    w2v=(--batched-only --device cpu --zipf-tokens 20000)
else
    dev=cuda
    simclr=(--device cuda --batch 512 --steps 20 --workers 8 --channels-last
            --configs cpu:fp32:eager,device:fp32:eager,device:bf16:eager,device:bf16:compile)
    infonce=(--device cuda --batches 256,1024,4096,8192 --repeats 20)
    sampled=(--device cuda --vocabs 10000,100000,1000000,10000000 --repeats 50 --full-max 1000000 --full-repeats 10)
    w2v=(--batched-only --device cuda --zipf-tokens 2000000)
fi
{
    echo "# GPU suite $(date -u +%Y-%m-%dT%H:%MZ), commit ${COMMIT:-$(git rev-parse --short HEAD 2>/dev/null || echo unknown)}"
    "$py" -c "import torch, pytorch_lightning as pl; print('torch', torch.__version__, '| lightning', pl.__version__,
'| device', torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu (dry run)')"
    echo
} >"$res"
step "CUDA tests (pytest -m gpu)" 150 "$py" -m pytest -m gpu -q -p no:cacheprovider tests/test_gpu.py tests/test_samplers.py
step "SimCLR throughput" 180 "$py" scripts/bench_simclr.py "${simclr[@]}"
step "NT-Xent vs lightly" 45 "$py" scripts/bench_infonce.py "${infonce[@]}"
step "NCE / sampled softmax vs vocabulary" 75 "$py" scripts/bench_sampled_losses.py "${sampled[@]}"
step "word2vec, batched path" 150 "$py" scripts/bench_word2vec.py "${w2v[@]}"
step "guard and gather overhead" 90 "$py" scripts/bench_step_overhead.py
echo "failed steps: ${failed[*]:-none}" | tee -a "$res"
[ ${#failed[@]} -eq 0 ]
