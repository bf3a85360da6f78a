#!/usr/bin/env bash
# The GPU checks of a session lent the `device` tool's machine (issue 20, point 5), in one call:
#
#   run(command="bash benchmarks/gpu_session.sh", carry=[".whl"], timeout_s=600)
#
# The machine's image has torch, torchvision, OpenCV, pandas, scikit-image and safetensors but not
# captum, zennit or PyAV: bring their wheels (Python 3.12) in .whl, made here once with
#
#   echo /.whl/ >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
#     --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d .whl av==18.1.0 captum==0.9.0 zennit==0.5.1
#
# Then: the CUDA tests (tests/test_cuda.py: every method on every architecture against the CPU,
# the engine's groups on the GPU, a batch on CUDA; the LSTM test of tests/test_modes.py) and the
# CUDA benchmark (benchmarks/cuda.py: CPU against GPU in one run, Captum's Occlusion beside ours).
# Logs and results come back from $OUT: copy results/cuda.md into BENCHMARKS.md's CUDA section.
set -u
export PYTHONUNBUFFERED=1
OUT="${OUT:-/tmp/gpu_out}"
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
  || { echo "the wheels in .whl did not install"; exit 1; }
export PYTHONPATH="/tmp/site:$PWD"
{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, captum, zennit, av; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())"
} 2>&1 | tee "$OUT/gpu.txt"
timeout 300 python3 -m pytest -q -p no:cacheprovider tests/test_cuda.py 2>&1 | tee "$OUT/tests.log"
timeout 60 python3 -m pytest -q -p no:cacheprovider \
  "tests/test_modes.py::test_saliency_through_an_lstm_on_cuda_equals_the_cpu" 2>&1 | tee -a "$OUT/tests.log"
timeout 220 python3 benchmarks/cuda.py --repeats 3 --cpu-repeats 1 --out "$OUT" 2>&1 | tee "$OUT/bench.log"
