"""Tests of ``distillery.export.quantize``: every recipe turns a tiny eager-attention export (BERT
and DistilBERT) into a loadable ONNX file whose logits stay close to fp32 and whose metadata
survives; the fusions are found; bad names and options fail clearly."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from transformers import (
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
)

from distillery.export import onnx_export, quantize
from distillery.measure import bench
from tests.conftest import VOCAB, tiny_config

METADATA = {"labels": '["neg", "pos"]', "producer": "distillery"}
FAMILIES = {
    "bert": lambda: BertForSequenceClassification(tiny_config(initializer_range=0.2)),
    "distilbert": lambda: DistilBertForSequenceClassification(DistilBertConfig(
        vocab_size=len(VOCAB), max_position_embeddings=64, dim=32, n_layers=2, n_heads=4,
        hidden_dim=37, num_labels=2, initializer_range=0.2)),
}
CASES = [  # recipe, options, max |Δlogit| allowed against fp32 ONNX
    ("dynamic", {}, 0.5),
    ("dynamic_per_channel", {}, 0.5),
    ("fused", {}, 1e-4),
    ("fused_dynamic", {}, 0.5),
    ("static", {"calibrate_method": "minmax"}, 0.5),
    ("static", {"calibrate_method": "entropy"}, 0.5),
    ("static", {"calibrate_method": "percentile"}, 0.5),
    ("fp16", {}, 1e-2),
]


def _feeds(batch: int, seq: int, seed: int) -> dict[str, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, len(VOCAB), (batch, seq), generator=g)
    mask = torch.ones_like(ids)
    for row in range(1, batch):  # right padding of various lengths
        mask[row, max(1, seq - row % seq):] = 0
    return {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}


@pytest.fixture(scope="module", params=list(FAMILIES))
def source(request, tmp_path_factory):
    """(family, fp32 export with eager attention, its logits on 64 random padded inputs)."""
    torch.manual_seed(0)
    model = FAMILIES[request.param]().eval()
    path = tmp_path_factory.mktemp(request.param) / "fp32.onnx"
    onnx_export.export(model, path, opset=18, metadata=METADATA)
    feeds = _feeds(64, 12, seed=1)
    (logits,) = bench.ort_session(str(path), "cpu").run(["logits"], feeds)
    return request.param, path, feeds, logits


def _apply(recipe, src, dst, **options):
    calibration = [_feeds(4, 10, seed=100 + i) for i in range(8)]
    return quantize.apply(recipe, src, dst, model_type="bert", num_heads=4, hidden_size=32,
                          calibration=calibration, **options)


@pytest.mark.parametrize(("recipe", "options", "tolerance"), CASES,
                         ids=[f"{r}-{o.get('calibrate_method', '')}".rstrip("-")
                              for r, o, _ in CASES])
def test_recipe_is_close_to_fp32_and_keeps_metadata(source, recipe, options, tolerance,
                                                    tmp_path):
    _, src, feeds, reference = source
    before = src.read_bytes()
    dst = tmp_path / "out" / f"{recipe}.onnx"
    facts = _apply(recipe, src, dst, **options)
    assert src.read_bytes() == before  # the source is left alone
    assert [p.name for p in dst.parent.iterdir()] == [dst.name]  # no temp debris
    onnx.checker.check_model(str(dst))
    assert METADATA.items() <= onnx_export.read_metadata(dst).items()
    assert facts["recipe"] == recipe
    assert (facts["quantized_ops"] > 0) == (recipe in quantize.INT8_RECIPES)
    session = bench.ort_session(str(dst), "cpu")
    (got,) = session.run(["logits"], feeds)
    assert got.dtype == np.float32 and got.shape == reference.shape
    v = onnx_export.compare(reference, got)
    assert v.max_abs_diff <= tolerance
    assert v.agreement >= (0.9 if recipe in quantize.INT8_RECIPES else 1.0)


@pytest.mark.parametrize("recipe", ["fused", "fused_dynamic"])
def test_fusion_finds_every_attention_block(source, recipe, tmp_path):
    _, src, _, _ = source
    facts = _apply(recipe, src, tmp_path / "f.onnx")
    assert facts["fused_Attention"] == 2  # both layers
    assert facts["fused_SkipLayerNormalization"] >= 2
    ops = {node.op_type for node in onnx.load(str(tmp_path / "f.onnx")).graph.node}
    assert ("QAttention" if recipe == "fused_dynamic" else "Attention") in ops


def test_without_eager_attention_nothing_is_fused(tmp_path):
    torch.manual_seed(0)
    model = FAMILIES["bert"]().eval()
    onnx_export.export(model, tmp_path / "sdpa.onnx", opset=18, eager_attention=False)
    assert model.config._attn_implementation == "sdpa"  # untouched
    facts = _apply("fused", tmp_path / "sdpa.onnx", tmp_path / "f.onnx")
    assert "fused_Attention" not in facts


def test_unknown_recipe_lists_the_recipes(tmp_path):
    with pytest.raises(ValueError, match="unknown quantisation recipe 'int4'; available: "
                                         "dynamic, dynamic_per_channel, fused, fused_dynamic, "
                                         "static, fp16"):
        _apply("int4", tmp_path / "m.onnx", tmp_path / "out.onnx")


def test_unknown_option_lists_the_options(tmp_path):
    with pytest.raises(ValueError, match="recipe 'static' has no option per_tensor; its "
                                         "options: calibrate_method, activation_type"):
        _apply("static", tmp_path / "m.onnx", tmp_path / "out.onnx", per_tensor=True)


def test_static_needs_calibration_and_a_known_method(source, tmp_path):
    _, src, _, _ = source
    with pytest.raises(ValueError, match="needs calibration feeds"):
        quantize.apply("static", src, tmp_path / "s.onnx", model_type="bert", num_heads=4,
                       hidden_size=32)
    with pytest.raises(ValueError, match="'mse' is not one of minmax, entropy, percentile"):
        _apply("static", src, tmp_path / "s.onnx", calibrate_method="mse")
    assert not (tmp_path / "s.onnx").exists()


@pytest.mark.parametrize("method", ["entropy", "percentile"])
def test_histogram_calibration_of_feeds_of_several_lengths_says_pad(source, method, tmp_path):
    _, src, _, _ = source
    calibration = [_feeds(1, 6 + i, seed=200 + i) for i in range(3)]  # 3 sequence lengths
    with pytest.raises(ValueError, match=f"{method!r} stacks every tensor over the "
                                         "calibration feeds, which have 3 different shapes: "
                                         "pad them"):
        quantize.apply("static", src, tmp_path / "s.onnx", model_type="bert", num_heads=4,
                       hidden_size=32, calibration=calibration, calibrate_method=method)
    assert not (tmp_path / "s.onnx").exists()
    # min/max takes each feed at its own length
    quantize.apply("static", src, tmp_path / "s.onnx", model_type="bert", num_heads=4,
                   hidden_size=32, calibration=calibration, calibrate_method="minmax")
    assert (tmp_path / "s.onnx").is_file()


def test_quantising_a_missing_file_fails(tmp_path):
    with pytest.raises(FileNotFoundError):
        _apply("dynamic", tmp_path / "missing.onnx", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()


def test_int8_batch_shapes_are_still_dynamic(source, tmp_path):
    _, src, _, _ = source
    _apply("fused_dynamic", src, tmp_path / "q.onnx")
    session = bench.ort_session(str(tmp_path / "q.onnx"), "cpu")
    for batch, seq in ((1, 4), (5, 17)):
        (logits,) = session.run(["logits"], _feeds(batch, seq, seed=seq))
        assert logits.shape == (batch, 2) and np.isfinite(logits).all()


@pytest.mark.parametrize("recipe", ["fused", "fused_dynamic"])
def test_layer_norms_become_primitive_ops_with_the_same_logits(source, recipe, tmp_path):
    _, src, feeds, _ = source
    kept, prim = tmp_path / "kept.onnx", tmp_path / "prim.onnx"
    _apply(recipe, src, kept, primitive_layernorm=False)
    facts = _apply(recipe, src, prim)
    norms = {"LayerNormalization", "SkipLayerNormalization"}
    assert norms & {n.op_type for n in onnx.load(str(kept)).graph.node}
    assert not norms & {n.op_type for n in onnx.load(str(prim)).graph.node}
    assert facts["primitive_layernorms"] >= 2 * 2  # two per layer
    (want,) = bench.ort_session(str(kept), "cpu").run(["logits"], feeds)
    (got,) = bench.ort_session(str(prim), "cpu").run(["logits"], feeds)
    np.testing.assert_allclose(got, want, atol=1e-4 if recipe == "fused" else 0.3, rtol=0)


def _norm_graph(read_mean: bool) -> onnx.ModelProto:
    from onnx import TensorProto, helper, numpy_helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3, 8])
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3, 8])]
    node_outs = ["y", "mean"] if read_mean else ["y"]
    nodes = [helper.make_node("LayerNormalization", ["x", "g", "b"], node_outs, axis=-1,
                              epsilon=1e-5)]
    if read_mean:
        outs.append(helper.make_tensor_value_info("mean", TensorProto.FLOAT, None))
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=8).astype(np.float32), n) for n in "gb"]
    graph = helper.make_graph(nodes, "g", [x], outs, inits)
    return helper.make_model(graph, ir_version=9, opset_imports=[helper.make_opsetid("", 18)])


def test_primitive_layer_norm_against_numpy_and_statistics_readers_left_alone():
    from distillery.export.quantize.graph import decompose_layer_norms

    model = _norm_graph(read_mean=False)
    assert decompose_layer_norms(model) == 1
    onnx.checker.check_model(model)
    x = np.random.default_rng(1).normal(size=(2, 3, 8)).astype(np.float32)
    g, b = (onnx.numpy_helper.to_array(i) for i in model.graph.initializer[:2])
    want = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * g + b
    import onnxruntime as ort
    (got,) = ort.InferenceSession(model.SerializeToString(),
                                  providers=["CPUExecutionProvider"]).run(["y"], {"x": x})
    np.testing.assert_allclose(got, want, atol=1e-5)
    reader = _norm_graph(read_mean=True)
    assert decompose_layer_norms(reader) == 0
    assert [n.op_type for n in reader.graph.node] == ["LayerNormalization"]


def test_primitive_skip_norm_adds_the_bias_where_onnx_runtime_folds_it(tmp_path):
    """The decomposed SkipLayerNormalization adds its bias to the MatMul output first, so ONNX
    Runtime folds it into the int8 MatMul (an Add fewer per norm): no Add of a constant to a
    quantised MatMul's output is left in the session's optimised graph. Biases are random, as
    trained ones are (zero-initialised ones share one initializer in the export)."""
    import onnxruntime as ort

    torch.manual_seed(0)
    model = FAMILIES["bert"]().eval()
    with torch.no_grad():
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(std=0.02)
    src = tmp_path / "fp32.onnx"
    onnx_export.export(model, src, opset=18, metadata=METADATA)
    _apply("fused_dynamic", src, tmp_path / "q.onnx")
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "opt.onnx")
    ort.InferenceSession(str(tmp_path / "q.onnx"), opts, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(tmp_path / "opt.onnx")).graph
    consts = {i.name for i in graph.initializer}
    matmuls = [n for n in graph.node if n.op_type in ("DynamicQuantizeMatMul",
                                                      "MatMulIntegerToFloat")]
    matmul_out = {o for n in matmuls for o in n.output}
    bias_adds = [n.name for n in graph.node if n.op_type == "Add"
                 and matmul_out & set(n.input) and consts & set(n.input)]
    assert bias_adds == []
    # attention output, FFN input (its Gelu left unfused from the bias) and FFN output of each
    # of the 2 layers, then pooler and classifier: 4 of these 8 without the rewrite's order
    with_bias = [n for n in matmuls if len(n.input) > 4 and n.input[4] in consts]
    assert len(with_bias) == 3 * 2 + 2, [n.name for n in with_bias]
    assert "BiasGelu" not in {n.op_type for n in graph.node}


@pytest.mark.parametrize("recipe", ["fused", "fused_dynamic"])
def test_constant_token_types_go_into_the_position_table(source, recipe, tmp_path):
    """A single-sentence BERT export builds all-zero token types from a buffer: the fused
    embedding drops them (token-type row 0 added to the position table), with the same
    logits (the recipe test's tolerances). DistilBERT has no token types: nothing to fold."""
    family, src, feeds, reference = source
    facts = _apply(recipe, src, tmp_path / "f.onnx")
    graph = onnx.load(str(tmp_path / "f.onnx")).graph
    embed = [n for n in graph.node if n.op_type.endswith("EmbedLayerNormalization")]
    assert len(embed) == 1 and embed[0].input[1] == "" and embed[0].input[4] == ""
    assert facts["folded_token_types"] == (1 if family == "bert" else 0)
    assert not {"Equal", "Where", "Expand", "GatherElements"} & {n.op_type for n in graph.node}
    (got,) = bench.ort_session(str(tmp_path / "f.onnx"), "cpu").run(["logits"], feeds)
    assert np.abs(got - reference).max() <= (1e-4 if recipe == "fused" else 0.5)


def test_token_types_read_from_an_input_are_kept(tmp_path):
    """Sentence pairs feed ``token_type_ids``: those are data, not a constant, and stay."""
    torch.manual_seed(0)
    model = FAMILIES["bert"]().eval()
    src = tmp_path / "pair.onnx"
    names = (*onnx_export.INPUTS, "token_type_ids")
    onnx_export.export(model, src, opset=18, input_names=names, metadata=METADATA)
    feeds = _feeds(8, 12, seed=3)
    feeds["token_type_ids"] = (np.arange(12) >= 5).astype(np.int64)[None].repeat(8, 0)
    (want,) = bench.ort_session(str(src), "cpu").run(["logits"], feeds)
    facts = _apply("fused", src, tmp_path / "f.onnx")
    assert facts["folded_token_types"] == 0
    embed = [n for n in onnx.load(str(tmp_path / "f.onnx")).graph.node
             if n.op_type == "EmbedLayerNormalization"]
    assert len(embed) == 1 and embed[0].input[1].startswith("token_type_ids")  # via a Cast
    (got,) = bench.ort_session(str(tmp_path / "f.onnx"), "cpu").run(["logits"], feeds)
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("recipe", ["fused", "fused_dynamic"])
def test_last_layer_runs_on_the_pooled_token_only(source, recipe, tmp_path):
    """The classifier reads position 0 of the last hidden state: the last layer's
    position-wise ops (attention output projection, FFN, norms) run on that row only, the
    attention itself on every position, with the same logits."""
    family, src, feeds, reference = source
    facts = _apply(recipe, src, tmp_path / "f.onnx")
    graph = onnx.load(str(tmp_path / "f.onnx")).graph
    onnx.checker.check_model(onnx.load(str(tmp_path / "f.onnx")))
    attention = [n for n in graph.node if n.op_type in ("Attention", "QAttention")]
    readers = [n for n in graph.node if attention[-1].output[0] in n.input]
    assert [n.op_type for n in readers] == ["Gather"]
    # output projection, 2 bias/residual adds, FFN in (MatMul, Add, Gelu), FFN out (MatMul, 2
    # adds) and 2 norms of 9 primitive ops
    assert facts["pooled_token_nodes"] == 27
    earlier = [n for n in graph.node if attention[0].output[0] in n.input]
    assert "Gather" not in {n.op_type for n in earlier}  # the first layer: every position
    (got,) = bench.ort_session(str(tmp_path / "f.onnx"), "cpu").run(["logits"], feeds)
    assert np.abs(got - reference).max() <= (1e-4 if recipe == "fused" else 0.5)


def _pooled_graph(mix: bool, hidden_out: bool = False) -> onnx.ModelProto:
    """ids -> embedding -> MatMul -> Add -> Relu -> row 1, or with a mean over positions
    before the Relu, row 0 of that mean."""
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=s).astype(np.float32), n)
             for n, s in (("table", (100, 8)), ("w", (8, 8)), ("b", (8,)))]
    inits.append(numpy_helper.from_array(np.array(0 if mix else 1, np.int64), "row"))
    nodes = [helper.make_node("Gather", ["table", "ids"], ["emb"]),
             helper.make_node("MatMul", ["emb", "w"], ["mm"]),
             helper.make_node("Add", ["mm", "b"], ["biased"])]
    last = "biased"
    if mix:
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "positions"))
        nodes.append(helper.make_node("ReduceMean", ["biased", "positions"], ["mixed"]))
        last = "mixed"
    nodes += [helper.make_node("Relu", [last], ["hidden"]),
              helper.make_node("Gather", ["hidden", "row"], ["y"], axis=1)]
    outs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])]
    if hidden_out:
        outs.append(helper.make_tensor_value_info("hidden", TensorProto.FLOAT,
                                                  ["batch", "seq", 8]))
    ids = helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", "seq"])
    graph = helper.make_graph(nodes, "g", [ids], outs, inits)
    return helper.make_model(graph, ir_version=9, opset_imports=[helper.make_opsetid("", 18)])


@pytest.mark.parametrize(("mix", "hidden_out", "narrowed"),
                         [(False, False, 3), (True, False, 1), (False, True, 0)])
def test_pooled_row_moves_up_to_the_first_op_that_mixes_positions(mix, hidden_out, narrowed):
    """MatMul by a weight, bias add and Relu are position-wise; a mean over positions is not;
    a hidden state that is also a graph output stays whole."""
    from distillery.export.quantize.graph import gather_pooled_token_early
    model = _pooled_graph(mix, hidden_out)
    ids = np.random.default_rng(1).integers(0, 100, (3, 6)).astype(np.int64)
    want = bench.ort_session(model.SerializeToString(), "cpu").run(None, {"ids": ids})
    assert gather_pooled_token_early(model) == narrowed
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    if narrowed:
        start = "ReduceMean" if mix else "Gather"  # the tensor entering the narrowed ops
        assert ops[ops.index(start) + 1] == "Gather"
    got = bench.ort_session(model.SerializeToString(), "cpu").run(None, {"ids": ids})
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(b, a, atol=1e-6, rtol=0)
    again = model.SerializeToString()
    assert gather_pooled_token_early(model) == 0 and model.SerializeToString() == again


def test_a_rewrite_that_changes_the_outputs_is_undone(monkeypatch):
    """The float check runs both graphs: if a position-mixing op were taken as
    position-wise, the rewrite is undone and nothing is reported narrowed."""
    from distillery.export.quantize import graph as qgraph
    model = _pooled_graph(mix=True)
    before = model.SerializeToString()
    monkeypatch.setattr(qgraph, "_row_wise", lambda node, constant: True)
    assert qgraph.gather_pooled_token_early(model) == 0
    assert model.SerializeToString() == before
