#!/usr/bin/env bash
# One command on a machine with an NVIDIA GPU, CuPy and a CUDA build of PyTorch:
# the whole test suite on CUDA against PyTorch CUDA, then the CUDA benchmark.
#   bash benchmarks/gpu.sh
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD/lib${PYTHONPATH:+:$PYTHONPATH}"
"$PYTHON" -c "import chainrule, torch; assert chainrule.cuda.is_available(), chainrule.cuda._probe(); print('GPU:', torch.cuda.get_device_name())" || exit 1
"$PYTHON" -m pytest -q -p no:cacheprovider tests/device tests/func tests/chainrule
status=$?
"$PYTHON" benchmarks/benchmark.py cuda
exit $status
