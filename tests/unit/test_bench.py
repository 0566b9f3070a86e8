"""Tests of ``distillery.measure.bench``: timing arithmetic, execution providers, ORT sessions.

No assertion depends on how fast this machine is: exact checks use a fake clock.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
import torch

from distillery.measure import bench

WANTED = ["cpu", "cuda", "tensorrt"]


def _feeds(tokenizer, sentences):
    return tokenizer(sentences, padding=True, return_tensors="np", return_token_type_ids=False)


class FakeClock:
    """``time.perf_counter`` stand-in advanced only by the fake model's ``run``."""

    def __init__(self) -> None:
        self.now = 100.0
        self.calls: list[int] = []

    def __call__(self) -> float:
        return self.now

    def run(self, feeds) -> None:
        self.calls.append(len(feeds["cost_ms"]))
        self.now += float(feeds["cost_ms"][0]) / 1e3


def test_measure_arithmetic_with_a_fake_clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(bench.time, "perf_counter", clock)
    singles = [{"cost_ms": np.array([1.0])}, {"cost_ms": np.array([3.0])}]
    batch = {"cost_ms": np.full(8, 10.0)}  # 8 rows, 10 ms per call
    timing = bench.measure(clock.run, singles, batch, warmup=3, repeats=4, throughput_batches=5)
    # latencies cycle 1, 3, 1, 3 ms -> median 2, p95 on the linear scale 3
    assert timing.latency_ms_p50 == pytest.approx(2.0)
    assert timing.latency_ms_p95 == pytest.approx(3.0)
    assert timing.throughput_per_s == pytest.approx(8 * 5 / 0.05)  # warm-up calls not counted
    assert clock.calls == [1] * (3 + 4) + [8] * (2 + 5)  # batch warm-up is min(warmup, 2)


def test_measure_interleaved_rotates_rounds_and_takes_the_median_of_rounds(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(bench.time, "perf_counter", clock)
    order: list[str] = []
    singles_of_b: list[int] = []

    def runner(name, slow_cost):
        def run(feeds):
            order.append(name)
            cost = float(feeds["cost_ms"][0])
            if len(feeds["cost_ms"]) == 1 and name == "b":
                singles_of_b.append(1)
                # warm-up 1, then per round 2 untimed + 2 timed: call 8 opens round 2's timing
                if len(singles_of_b) == 8:
                    cost = slow_cost
            clock.now += cost / 1e3
        return run

    singles = [{"cost_ms": np.array([1.0])}]
    batch = {"cost_ms": np.full(4, 2.0)}
    t = bench.measure_interleaved({"a": runner("a", 1.0), "b": runner("b", 50.0)}, singles,
                                  batch, warmup=1, repeats=6, throughput_batches=3, rounds=3)
    assert set(t) == {"a", "b"}
    assert t["a"].latency_ms_p50 == pytest.approx(1.0)
    assert t["b"].latency_ms_p50 == pytest.approx(1.0)  # one slow round does not move the median
    assert t["b"].latency_ms_p95 > 10.0  # the slow call is in the tail
    assert t["b"].round_ms == pytest.approx([1.0, 25.5, 1.0])  # round 2: median of 50 and 1
    assert t["a"].throughput_per_s == pytest.approx(4 / 0.002)
    timed = order[4:]  # after 1 + 1 warm-up calls per variant
    # per variant and round: 2 untimed (bench.SETTLE) + 2 timed singles + 1 batch
    rounds = [timed[i:i + 10] for i in range(0, len(timed), 10)]
    assert [r[0] for r in rounds] == ["a", "b", "a"]  # the order rotates every round
    assert rounds[0][:5] == ["a"] * 5 and bench.SETTLE == 2


def test_measure_on_the_tiny_model(tiny_model, tiny_tokenizer):
    singles = [dict(_feeds(tiny_tokenizer, [s])) for s in ("a good film", "dull and flat")]
    batch = dict(_feeds(tiny_tokenizer, ["a good film", "dull", "it is fun ."]))
    timing = bench.measure(bench.torch_runner(tiny_model), singles, batch, warmup=1, repeats=5,
                           throughput_batches=2)
    assert 0 < timing.latency_ms_p50 <= timing.latency_ms_p95
    assert timing.throughput_per_s > 0


def test_torch_runner_and_latency(tiny_model, tiny_tokenizer):
    feeds = dict(_feeds(tiny_tokenizer, ["a good film", "dull"]))
    logits = bench.torch_runner(tiny_model)(feeds)
    assert logits.shape == (2, 2) and not tiny_model.training
    assert bench.torch_latency_ms(tiny_model, [feeds], warmup=1, repeats=3) > 0


def test_time_calls_counts_and_order():
    seen: list[int] = []
    out = bench.time_calls(seen.append, warmup=2, repeats=3)
    assert seen == [0, 1, 0, 1, 2] and out.shape == (3,) and (out >= 0).all()


def test_available_providers_always_keeps_cpu():
    usable, skipped = bench.available_providers(WANTED)
    assert "cpu" in usable
    assert set(usable) | set(skipped) == set(WANTED) and not set(usable) & set(skipped)
    assert all(isinstance(why, str) and why for why in skipped.values())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the reasons on a CPU-only machine")
def test_available_providers_explains_each_skip_without_a_gpu(caplog):
    usable, skipped = bench.available_providers(WANTED)
    assert usable == ["cpu"]
    assert set(skipped) == {"cuda", "tensorrt"}
    for short, why in skipped.items():
        assert "CUDA" in why or bench.PROVIDERS[short] in why, why
        assert f"skipping execution provider {short}" in caplog.text


def test_available_providers_reports_a_missing_build(monkeypatch):
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    usable, skipped = bench.available_providers(WANTED)
    assert usable == ["cpu"]
    assert skipped == {
        short: f"{bench.PROVIDERS[short]} not in this onnxruntime build (CPUExecutionProvider)"
        for short in ("cuda", "tensorrt")
    }


def test_ort_session_on_cpu(tiny_onnx):
    _, path = tiny_onnx
    session = bench.ort_session(str(path), "cpu", threads=1)
    assert session.get_providers() == ["CPUExecutionProvider"]
    assert session.get_session_options().intra_op_num_threads == 1
    ids = np.array([[2, 5, 6, 3]], dtype=np.int64)
    (logits,) = session.run(["logits"], {"input_ids": ids, "attention_mask": np.ones_like(ids)})
    assert logits.shape == (1, 2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a GPU")
def test_ort_session_refuses_a_provider_it_cannot_enable(tiny_onnx):
    _, path = tiny_onnx
    with pytest.raises(RuntimeError, match="CUDAExecutionProvider could not be enabled"):
        bench.ort_session(str(path), "cuda")


@pytest.mark.gpu
def test_ort_session_on_cuda_matches_cpu(tiny_onnx):
    usable, skipped = bench.available_providers(["cuda"])
    if "cuda" not in usable:  # no GPU, or a GPU with the CPU build of onnxruntime
        pytest.skip(f"cuda not usable here: {skipped['cuda']}")
    _, path = tiny_onnx
    session = bench.ort_session(str(path), "cuda")
    assert session.get_providers()[0] == "CUDAExecutionProvider"
    ids = np.array([[2, 5, 6, 7, 3], [2, 8, 3, 0, 0]], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64)}
    (gpu,) = session.run(["logits"], feeds)
    (cpu,) = bench.ort_session(str(path), "cpu").run(["logits"], feeds)
    np.testing.assert_allclose(gpu, cpu, atol=1e-3)


def test_provider_starts_on_cpu():
    assert bench._provider_starts("CPUExecutionProvider")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without a usable GPU")
def test_listed_gpu_provider_that_cannot_start_is_skipped(monkeypatch):
    """onnxruntime-gpu lists CUDA even without a GPU; the probe session must catch that."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    usable, skipped = bench.available_providers(["cpu", "cuda"])
    assert usable == ["cpu"]
    assert "could not enable" in skipped["cuda"] or "not in this onnxruntime" in skipped["cuda"]
