"""The CUDA paths (issue 20, point 5), run where a GPU is (the `device` tool's machine: see
benchmarks/gpu_session.sh); skipped on a CPU.  Every method on every zoo architecture computes on
the GPU what it computes on the CPU (TF32 off, so that the two differ by float32's rounding only;
the noise of SmoothGrad and SmoothFlow is drawn on the GPU and differs), hands the model back on
its device and in its mode; the perturbation engine sends groups of perturbed clips through the
network at once on the GPU (sized by its free memory); a batch runs on CUDA."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from conftest import small_input, small_model
from test_every_method import ARCHS, fast_params

from xai_core import explain
from xai_core.methods.machinery.registry import method_specs

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

RANDOM = {"smoothgrad", "smoothflow"}  # noise drawn on the device: another draw on the GPU


@pytest.fixture
def exact_float32():
    """cuDNN's convolutions in full float32 (TF32 is on by default for them) for the test's span."""
    before = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    yield
    torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before


@pytest.mark.parametrize("arch", ARCHS)
def test_every_method_on_cuda_computes_what_it_computes_on_the_cpu(arch, exact_float32):
    on_cpu = small_model(arch)
    on_gpu = copy.deepcopy(on_cpu).to("cuda")
    on_gpu.train()  # handed back as found
    x = small_input()
    for spec in method_specs(on_cpu):
        params = fast_params(spec)
        want = explain(on_cpu, x, spec.name, target=1, **params)
        got = explain(on_gpu, x, spec.name, target=1, **params)
        assert got.meta["device"].startswith("cuda"), spec.name
        assert next(on_gpu.net.parameters()).is_cuda and on_gpu.training, spec.name
        for name in ("spatial", "temporal"):
            a, b = getattr(want, name), getattr(got, name)
            if a is None:
                assert b is None, (spec.name, name)
                continue
            assert b.shape == a.shape and np.isfinite(b).all(), (spec.name, name)
            if spec.name not in RANDOM:
                scale = max(float(np.abs(a).max()), 1e-12)
                np.testing.assert_allclose(b, a, rtol=0, atol=2e-3 * scale, err_msg=f"{spec.name} {name}")


def test_the_perturbation_engine_sends_groups_of_clips_on_the_gpu(monkeypatch):
    """Occlusion on a 3D CNN: the incremental network takes many perturbed clips a call on CUDA,
    as many as a quarter of the free memory holds (at most GPU_GROUP)."""
    from xai_core.methods.machinery import engine as engine_module
    from xai_core.methods.machinery.incremental import IncrementalNet

    sizes = []
    real = IncrementalNet.many

    def counted(self, data, lo):
        sizes.append(int(data.shape[0]))
        return real(self, data, lo)

    monkeypatch.setattr(IncrementalNet, "many", counted)
    model = small_model("r3d").to("cuda")
    expl = explain(model, small_input(), "occlusion", target=1, window=(2, 16, 16), stride=(2, 16, 16))
    assert expl.meta["device"].startswith("cuda") and sizes
    assert max(sizes) > engine_module.CPU_GROUP and max(sizes) <= engine_module.GPU_GROUP


def test_a_batch_runs_on_cuda(tiny_checkpoints, tmp_path):
    """``xai batch --device cuda``: the rows say the GPU, and equal the CPU's rows' predictions."""
    from xai_core.batch import BatchSpec, read_results, run_batch

    spec = BatchSpec(["tiny_cnn_transformer"], ["gradcam", "saliency"], "shapes:0..2")
    run_batch(spec, tmp_path / "gpu", device="cuda", report=None)
    run_batch(spec, tmp_path / "cpu", device="cpu", report=None)
    gpu, cpu = (read_results(tmp_path / d).set_index("item").sort_index() for d in ("gpu", "cpu"))
    assert (gpu["status"] == "ok").all() and gpu["device"].str.startswith("cuda").all()
    assert (gpu["predicted_index"] == cpu["predicted_index"]).all()
