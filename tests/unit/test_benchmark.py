"""Stage ``benchmark``'s measurements: the variants found, torch and ONNX of one model scored
alike, interleaved timings, fp16 kept off the CPU, and the confusion counts."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from distillery.config.benchmark import BenchmarkParams
from distillery.data.prepared import load_prepared
from distillery.export import onnx_export
from distillery.measure import benchmark


def test_confusion_matrix_rows_are_actual_columns_predicted():
    logits = np.array([[2.0, 0.0, 0.0], [0.0, 3.0, 0.0], [0.0, 3.0, 0.0], [0.0, 0.0, 1.0]])
    m = benchmark.confusion_matrix(logits, [0, 0, 1, 2], 3)
    assert m.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 1]]


def test_inputs_are_batch_one_feeds_and_one_padded_batch(tiny_run_dir, tiny_tokenizer):
    dev = load_prepared(tiny_run_dir / "data/prepared")[0]["eval"]
    singles, batch = benchmark.inputs(dev, tiny_tokenizer, 16, 5, 4)
    assert len(singles) == 5 and all(f["input_ids"].shape[0] == 1 for f in singles)
    assert batch["input_ids"].shape[0] == 4 and batch["input_ids"].dtype == np.int64


@pytest.fixture
def onnx_dir(tiny_run_dir, tmp_path):
    """The run's student ONNX and a copy tagged as an fp16 file (CPU must skip it)."""
    folder = tmp_path / "onnx"
    shutil.copytree(tiny_run_dir / "models/onnx", folder)
    twin = folder / "student_fp16.onnx"
    shutil.copyfile(folder / "student.onnx", twin)
    onnx_export.set_metadata(twin, {**onnx_export.read_metadata(twin),
                                    "variant": "student-onnx-fp16", "precision": "fp16"})
    return folder


def test_run_scores_torch_and_onnx_alike_and_skips_fp16_on_cpu(tiny_run_dir, onnx_dir):
    assert [v for v, _, _ in benchmark.onnx_files(onnx_dir)] == ["student-onnx-fp16",
                                                                  "student-onnx-fp32"]
    dev = load_prepared(tiny_run_dir / "data/prepared")[0]["eval"]
    p = BenchmarkParams(repeats=3, warmup=1, rounds=2, throughput_batches=1, batch_size=4)
    res = benchmark.run(dev, str(tiny_run_dir / "models/teacher"),
                        str(tiny_run_dir / "models/student"), str(onnx_dir), ["cpu"],
                        torch.device("cpu"), 1, 16, p)
    assert set(res.variants) == {"teacher-torch-fp32", "student-torch-fp32", "student-onnx-fp32"}
    assert res.skipped_variants == {"student-onnx-fp16": "fp16 runs on GPU providers only"}
    torch_row, onnx_row = res.variants["student-torch-fp32"], res.variants["student-onnx-fp32"]
    assert torch_row["accuracy"] == onnx_row["accuracy"]
    np.testing.assert_allclose(res.logits["student-torch-fp32"],
                               res.logits["student-onnx-fp32"], atol=1e-4)
    assert onnx_row["provider"] == "cpu" and torch_row["provider"] == "torch-cpu"
    assert all(r["latency_ms_p50"] > 0 and r["throughput_per_s"] > 0
               for r in res.variants.values())
    assert res.threads["torch"] == torch.get_num_threads() and res.threads["onnxruntime"] == 1


def test_end_to_end_runners_answer_as_the_scored_logits(tiny_run_dir):
    """Text in, label out: the torch and the ONNX runner give each eval text the label its
    batch-1 logits give (the ONNX one through the Space's ``tokenizers`` path)."""
    from distillery.measure import bench, evaluate
    from distillery.modeling import loading

    dev = load_prepared(tiny_run_dir / "data/prepared")[0]["eval"]
    folder = str(tiny_run_dir / "models/student")
    tok = loading.load_tokenizer(folder)
    model = loading.load_classifier(folder)
    path = tiny_run_dir / "models/onnx/student.onnx"
    sess = bench.ort_session(str(path), "cpu", 1)
    meta = onnx_export.read_metadata(path)
    want = evaluate.onnx_logits(sess, dev, tok, 16, batch_size=1).argmax(-1)
    runs = {"onnx": benchmark.onnx_e2e(sess, folder, tok, meta, 16),
            "torch": benchmark.torch_e2e(model, tok, 16)}
    for name, run in runs.items():
        got = [run(feed) for feed in benchmark.texts(dev, len(dev))]
        assert got == want.tolist(), name
