#!/usr/bin/env bash
# The GPU checks of the performance and reliability issues, in one run on a machine with one CUDA GPU and the
# project's dependencies (figures in benchmarks/README.md). Usage, from the repository root:
#   OUT=/tmp/gpu bash benchmarks/gpu_session.sh [CPU_REPORT]
# CPU_REPORT (default reports/demo.json): a CPU scan of the demo family to compare the GPU scan with.
set -uo pipefail
OUT=${OUT:-/tmp/riskaudit-gpu}
CPU_REPORT=${1:-reports/demo.json}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$PY -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
# ONLY="oom extraction ..." runs just those steps (default: all)
want() { [[ -z "${ONLY:-}" || " $ONLY " == *" $1 "* ]] && { echo; echo "== $1"; }; }
cd benchmarks
want oom && $PY bench_oom.py
want extraction && $PY bench_extraction.py --device cuda --repeat 5
want extraction-pythia-32-32 && $PY bench_extraction.py --device cuda --repeat 5 --items documents --documents 1000 \
  --prefix-len 32 --suffix-len 32
want throughput && $PY bench_throughput.py --device cuda --repeat 5
want throughput-auto && $PY bench_throughput.py --device cuda --repeat 5 --batch-size 0
want lm-eval && $PY bench_lm_eval.py --device cuda --repeat 5
# the same ratios at a realistic size: a random Pythia-160m-shaped model (throughput does not depend on the weights)
want pythia-160m && $PY make_model.py --shape pythia-160m --out /tmp/rg/p160 && \
  $PY bench_throughput.py --member /tmp/rg/p160 --device cuda --repeat 5 && \
  $PY bench_throughput.py --member /tmp/rg/p160 --device cuda --repeat 5 --batch-size 0 && \
  $PY bench_lm_eval.py --member /tmp/rg/p160 --device cuda --repeat 3 && \
  $PY bench_extraction.py --member /tmp/rg/p160 --device cuda --repeat 3
cd ..
want scan-cuda && {
t0=$(date +%s%N)
$PY -m riskaudit scan --family demo --device cuda --batch-size 0 --no-cache -q --out /tmp/rg/demo-cuda.json >/dev/null
echo "rc=$? milliseconds=$(( ($(date +%s%N) - t0) / 1000000 ))"
cp /tmp/rg/demo-cuda.json "$OUT/"
$PY benchmarks/compare_reports.py "$CPU_REPORT" /tmp/rg/demo-cuda.json
}
want scan-cuda-capped && {
$PY - scan --family demo --device cuda --batch-size 1024 --no-cache -q --out /tmp/rg/demo-capped.json <<'PY' >/dev/null
import sys
import torch
torch.cuda.set_per_process_memory_fraction(600 * 2**20 / torch.cuda.get_device_properties(0).total_memory)
import runpy
sys.argv = ["riskaudit", *sys.argv[1:]]
runpy.run_module("riskaudit", run_name="__main__")  # as `python -m riskaudit`
PY
echo "rc=$?"
cp /tmp/rg/demo-capped.json "$OUT/"
$PY -c "
import json; r = json.load(open('/tmp/rg/demo-capped.json'))
for m in r['members']:
    print(m['name'], [(h['probe_id'], h['from_size'], h['to_size']) for h in m['batch_halvings']])
print([n for n in r['notes'] if 'out of memory' in n][:2])"
$PY benchmarks/compare_reports.py /tmp/rg/demo-cuda.json /tmp/rg/demo-capped.json --tol 1e-4
}
# issue 15: Ray on the GPU (needs `pip install 'riskaudit[ray]'` there): a family of random Pythia-shaped members
# (70m, 160m, 410m), local executor vs a local Ray whose tasks share the GPU (each asks for its share of it)
want ray && {
for s in 70m 160m 410m; do $PY benchmarks/make_model.py --shape pythia-$s --out /tmp/rg/pythia-$s >/dev/null; done
cat > /tmp/rg/pythia-shaped.toml <<'TOML'
name = "pythia-shaped"
description = "random Pythia-shaped members (benchmarks/make_model.py)"
[[members]]
name = "70m"
source = "/tmp/rg/pythia-70m"
tokens = "300B"
[[members]]
name = "160m"
source = "/tmp/rg/pythia-160m"
tokens = "300B"
[[members]]
name = "410m"
source = "/tmp/rg/pythia-410m"
tokens = "300B"
TOML
$PY -m riskaudit scan --family /tmp/rg/pythia-shaped.toml --plan --device auto --no-memorization
$PY benchmarks/bench_ray.py --family /tmp/rg/pythia-shaped.toml --cluster local --device cuda
}
