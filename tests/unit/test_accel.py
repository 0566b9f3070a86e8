"""Tests of ``distillery.measure.accel``: TensorRT profiles and caches, provider lists, I/O binding
(the GPU parts skip cleanly without a CUDA device)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distillery.measure import accel, bench


def test_trt_options_declare_one_profile_for_every_input_and_the_caches(tmp_path):
    opts = accel.trt_options(["input_ids", "attention_mask"], max_batch=32, max_length=64,
                             cache_dir=tmp_path / "trt")
    assert opts["trt_profile_min_shapes"] == "input_ids:1x1,attention_mask:1x1"
    assert opts["trt_profile_opt_shapes"] == "input_ids:1x32,attention_mask:1x32"
    assert opts["trt_profile_max_shapes"] == "input_ids:32x64,attention_mask:32x64"
    assert opts["trt_engine_cache_enable"] == "True" and opts["trt_fp16_enable"] == "False"
    assert (tmp_path / "trt").is_dir() and opts["trt_engine_cache_path"] == str(tmp_path / "trt")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"input_names": []}, "bad profile"),
    ({"max_batch": 0}, "bad profile"),
    ({"opt_batch": 64}, "exceeds max"),
    ({"opt_length": 65}, "exceeds max"),
])
def test_trt_options_reject_impossible_profiles(tmp_path, kwargs, match):
    args = {"input_names": ["input_ids"], "max_batch": 32, "max_length": 64,
            "cache_dir": tmp_path, **kwargs}
    with pytest.raises(ValueError, match=match):
        accel.trt_options(**args)


def test_provider_lists_fall_back_to_cuda_then_cpu(tmp_path):
    trt = accel.trt_options(["input_ids"], 4, 8, tmp_path)
    names = [p[0] if isinstance(p, tuple) else p for p in accel.providers_for("tensorrt", trt)]
    assert names == ["TensorrtExecutionProvider", "CUDAExecutionProvider",
                     "CPUExecutionProvider"]
    assert accel.providers_for("cuda")[1] == "CPUExecutionProvider"
    with pytest.raises(ValueError, match="not a GPU provider"):
        accel.providers_for("cpu")
    with pytest.raises(ValueError, match="needs its options"):
        accel.providers_for("tensorrt")


@pytest.mark.gpu
@pytest.mark.parametrize("provider", ["cuda", "tensorrt"])
def test_gpu_session_with_io_binding_matches_cpu(tiny_onnx, tmp_path, provider):
    usable, skipped = bench.available_providers([provider])
    if not torch.cuda.is_available() or provider not in usable:
        pytest.skip(f"{provider} not usable here: {skipped.get(provider, 'no CUDA device')}")
    _, path = tiny_onnx
    ids = np.array([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}
    sess = accel.session(path, provider, input_names=list(feeds), max_batch=4, max_length=16,
                         cache_dir=tmp_path / "trt")
    gpu = accel.io_binding_runner(sess)(feeds)
    (cpu,) = bench.ort_session(str(path), "cpu").run(["logits"], feeds)
    np.testing.assert_allclose(gpu, cpu, atol=1e-2)
