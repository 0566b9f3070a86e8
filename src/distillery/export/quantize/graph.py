"""What every recipe shares: the cleaned source graph, op counts and the recipe's inputs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx

QUANTIZED_OPS = ("MatMulInteger", "DynamicQuantizeMatMul", "QAttention", "QGemm",
                 "QLinearMatMul", "DynamicQuantizeLinear", "QuantizeLinear", "DequantizeLinear")
"""Op types that only a quantised graph holds; counted in every recipe's facts."""


@dataclass(frozen=True)
class Target:
    """What a recipe may need to know about the model besides its graph.

    Attributes:
        model_type: the transformers ``model_type`` (``bert``, ``roberta``, ``distilbert``…).
        num_heads: attention heads per layer.
        hidden_size: width of the encoder.
        calibration: input feeds (name -> int64 array) for static quantisation.
    """

    model_type: str
    num_heads: int
    hidden_size: int
    calibration: list[dict[str, np.ndarray]] | None = None


def save_clean(src: str | Path, dst: str | Path) -> None:
    """Copy the ONNX file ``src`` to ``dst`` without the exporter's intermediate
    ``value_info``: ONNX shape inference, which the quantisers and the optimizer run,
    recomputes them and rejects some of the exporter's annotations."""
    model = onnx.load(str(src))
    del model.graph.value_info[:]
    onnx.save(model, str(dst))


def op_counts(path: str | Path) -> Counter[str]:
    """Number of nodes of each op type in the main graph of the ONNX file at ``path``."""
    return Counter(node.op_type for node in onnx.load(str(path)).graph.node)


def quantized_facts(path: str | Path) -> dict[str, int]:
    """``quantized_ops`` (nodes of :data:`QUANTIZED_OPS`) and ``nodes`` of a model."""
    ops = op_counts(path)
    return {"nodes": sum(ops.values()), "quantized_ops": sum(ops[op] for op in QUANTIZED_OPS)}


@dataclass(frozen=True)
class VocabRemap:
    """A vocabulary-pruned embedding lookup that :func:`unfold_vocab_remap` expanded.

    Attributes:
        name: the kept rows' initializer (restored under this name).
        table: name of the expanded ``(V, D)`` table now in the graph.
        rows: the kept rows ``(K, D)`` it was built from.
        remap: ``(V,)`` int64, original id -> kept row.
    """

    name: str
    table: str
    rows: np.ndarray
    remap: np.ndarray


_PASS_THROUGH = ("Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten")
"""Ops between ``input_ids`` and the remap ``Gather`` that only change the ids' shape."""

_IDS_OF_TABLE = {"Gather": (0, 1), "EmbedLayerNormalization": (2, 0)}
"""Op -> (input index of the word table, input index of the ids it reads)."""


def _shape_source(name: str, producers: dict[str, onnx.NodeProto], inputs: set[str]) -> str | None:
    """The graph input that ``name`` is a reshaping of, or None."""
    while name not in inputs:
        node = producers.get(name)
        if node is None or node.op_type not in _PASS_THROUGH:
            return None
        name = node.input[0]
    return name


def unfold_vocab_remap(model: onnx.ModelProto) -> list[VocabRemap]:
    """Turn each ``rows[remap[input_ids]]`` lookup of a vocabulary-pruned model
    (:class:`distillery.compress.vocab.RemappedEmbedding`) into one ``Gather`` of ``rows[remap]`` on
    ``input_ids``, in place.

    ONNX Runtime's ``EmbedLayerNormalization`` fusion needs the word ``Gather`` to read
    ``input_ids`` itself; the expanded ``(V, D)`` table lets it match, and
    :func:`refold_vocab_remap` puts the kept rows and the remap back afterwards.

    Returns:
        What was unfolded (empty for a model without a remap).
    """
    inits = {i.name: i for i in model.graph.initializer}
    producers = {out: node for node in model.graph.node for out in node.output}
    inputs = {i.name for i in model.graph.input}
    done = []
    for node in model.graph.node:
        if node.op_type != "Gather" or node.input[0] not in inits:
            continue
        table = inits[node.input[0]]
        if len(table.dims) != 2 or table.data_type not in (onnx.TensorProto.FLOAT,
                                                             onnx.TensorProto.FLOAT16):
            continue
        name = node.input[1]  # walk back: reshape*, Gather(remap), reshape*, input_ids
        while (prod := producers.get(name)) is not None and prod.op_type in _PASS_THROUGH:
            name = prod.input[0]
        lookup = producers.get(name)
        if (lookup is None or lookup.op_type != "Gather" or lookup.input[0] not in inits
                or len(inits[lookup.input[0]].dims) != 1):
            continue
        ids = _shape_source(lookup.input[1], producers, inputs)
        if ids is None:
            continue
        rows = onnx.numpy_helper.to_array(table)
        remap = onnx.numpy_helper.to_array(inits[lookup.input[0]]).astype(np.int64)
        full = f"{table.name}_unfolded"
        model.graph.initializer.append(onnx.numpy_helper.from_array(rows[remap], full))
        node.input[0], node.input[1] = full, ids
        done.append(VocabRemap(table.name, full, rows, remap))
    if done:
        _drop_dead(model)
    return done


def refold_vocab_remap(model: onnx.ModelProto, remaps: list[VocabRemap]) -> None:
    """Undo :func:`unfold_vocab_remap` on the (possibly fused) graph, in place: each node
    reading an expanded table reads the kept rows instead, through a ``Gather`` of the remap
    on the ids it reads (int32 ids for ``EmbedLayerNormalization``, which casts them).

    Raises:
        ValueError: an expanded table is read by an op other than ``Gather`` or
            ``EmbedLayerNormalization``.
    """
    for r in remaps:
        rows = r.name
        added = [onnx.numpy_helper.from_array(r.rows, rows)]
        for node in [n for n in model.graph.node if r.table in n.input]:
            at = _IDS_OF_TABLE.get(node.op_type)
            if at is None or node.input[at[0]] != r.table:
                raise ValueError(f"{node.op_type} node {node.name!r} reads the vocabulary table "
                                 f"{r.table!r}; only {', '.join(_IDS_OF_TABLE)} can be refolded")
            int32 = node.op_type == "EmbedLayerNormalization"
            remap = f"{r.name}_remap{'_int32' if int32 else ''}"
            if remap not in {t.name for t in added}:
                added.append(onnx.numpy_helper.from_array(
                    r.remap.astype(np.int32 if int32 else np.int64), remap))
            ids = node.input[at[1]]
            remapped = f"{ids}_remapped"
            node.input[at[0]], node.input[at[1]] = rows, remapped
            index = list(model.graph.node).index(node)
            model.graph.node.insert(index, onnx.helper.make_node(
                "Gather", [remap, ids], [remapped], name=f"{node.name}_vocab_remap"))
        keep = [i for i in model.graph.initializer if i.name != r.table]
        del model.graph.initializer[:]
        model.graph.initializer.extend(keep + added)


def _drop_dead(model: onnx.ModelProto) -> None:
    """Remove nodes and initializers no graph output depends on (left alone in a graph with
    subgraphs, whose reads this does not trace)."""
    if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
           for node in model.graph.node for a in node.attribute):
        return
    needed = {o.name for o in model.graph.output}
    live = []
    for node in reversed(model.graph.node):
        if any(out in needed for out in node.output):
            live.append(node)
            needed.update(node.input)
    del model.graph.node[:]
    model.graph.node.extend(reversed(live))
    inits = [i for i in model.graph.initializer if i.name in needed]
    del model.graph.initializer[:]
    model.graph.initializer.extend(inits)


def _ancestors(name: str, graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The nodes of ``graph`` that ``name`` is computed from, in graph order."""
    producers = {o: n for n in graph.node for o in n.output}
    seen: set[int] = set()
    stack = [name]
    while stack:
        node = producers.get(stack.pop())
        if node is not None and id(node) not in seen:
            seen.add(id(node))
            stack.extend(i for i in node.input if i)
    return [n for n in graph.node if id(n) in seen]


def _constant_zeros(model: onnx.ModelProto, name: str) -> bool:
    """Whether tensor ``name`` of ``model`` is all zeros whatever the inputs: it reads the
    graph inputs only through ``Shape``, and evaluates to zeros on two input shapes."""
    import onnxruntime as ort

    nodes = _ancestors(name, model.graph)
    inputs = {i.name: i for i in model.graph.input}
    if not nodes or any(i in inputs and n.op_type != "Shape" for n in nodes for i in n.input):
        return False
    read = {i for n in nodes for i in n.input}
    used = [inputs[i] for i in inputs if i in read]
    inits = [t for t in model.graph.initializer if t.name in read]
    graph = onnx.helper.make_graph(nodes, "segment", used,
                                   [onnx.helper.make_empty_tensor_value_info(name)], inits)
    sub = onnx.helper.make_model(graph, opset_imports=model.opset_import,
                                 ir_version=model.ir_version)
    try:
        session = ort.InferenceSession(sub.SerializeToString(),
                                       providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - not evaluable on its own: leave the graph alone
        return False
    for batch, seq in ((1, 5), (3, 11)):
        feeds = {i.name: np.ones((batch, seq), dtype=onnx.helper.tensor_dtype_to_np_dtype(
            i.type.tensor_type.elem_type)) for i in used}
        (out,) = session.run(None, feeds)
        if out.shape != (batch, seq) or np.any(out):
            return False
    return True


def fold_constant_token_types(model: onnx.ModelProto) -> int:
    """Drop the segment (token-type) input of every fused ``EmbedLayerNormalization`` whose
    token-type ids are zeros whatever the inputs (a single-sentence export builds them from the
    model's all-zero buffer, in 16 nodes), in place: token-type row 0 is added to every row of
    the position table instead, the same sum. Measured with the bias-on-MatMul GELU (see
    :func:`distillery.export.quantize.fused.fused`): the fused int8 student 4-5% faster (0.40 vs
    0.42 ms, 4 repetitions of 30 interleaved rounds), the int8 teacher too.

    A graph whose token types come from a ``token_type_ids`` input (sentence pairs) is left
    alone. Returns the number of embeddings folded.
    """
    inits = {t.name: t for t in model.graph.initializer}
    readers: dict[str, int] = {}
    for node in model.graph.node:
        for i in node.input:
            readers[i] = readers.get(i, 0) + 1
    count = 0
    for node in model.graph.node:
        ins = list(node.input) + [""] * 5
        if (node.op_type != "EmbedLayerNormalization" or not ins[1] or ins[3] not in inits
                or ins[4] not in inits or readers.get(ins[3]) != 1
                or not _constant_zeros(model, ins[1])):
            continue
        position = onnx.numpy_helper.to_array(inits[ins[3]])
        segment = onnx.numpy_helper.to_array(inits[ins[4]])
        inits[ins[3]].CopyFrom(onnx.numpy_helper.from_array(
            (position + segment[0]).astype(position.dtype), ins[3]))
        node.input[1] = ""
        node.input[4] = ""
        count += 1
    if count:
        _drop_dead(model)
    return count


_NORMS = {"SkipLayerNormalization": "com.microsoft", "LayerNormalization": ""}


_MATMULS = ("MatMul", "Gemm")
"""Producers whose output takes a ``SkipLayerNormalization``'s bias first (see below)."""


def decompose_layer_norms(model: onnx.ModelProto) -> int:
    """Rewrite every last-axis ``LayerNormalization`` and ``SkipLayerNormalization`` (ONNX
    Runtime's fused residual + layer norm) of a float32 graph as primitive ops, in place:
    ``x = input (+ skip + bias); y = (x - mean) / sqrt(var + eps) * gamma + beta``.

    Same maths in 9-10 ops, and faster on ONNX Runtime 1.31's CPU provider, whose layer-norm
    kernel is slow on short sequences: on 25 tokens x 384 it takes 24 us (2 threads) where the
    primitive ops take 13-14 us, and the int8 default student ran 0.27 ms instead of 0.32-0.39
    (teacher 1.07-1.32 instead of 1.17-1.33 ms; 3 interleaved repetitions, 2 threads).

    A skip norm's bias is added to the input a MatMul produced before the residual is: ONNX
    Runtime then folds it into the int8 MatMul (``DynamicQuantizeMatMul``'s bias), an Add fewer
    per norm (the default student: 79 -> 75 nodes after session optimisation, same logits,
    0.98x the latency in 15 interleaved rounds).

    Norms whose optional statistics outputs (mean, inverse std) are read, or over another axis,
    are left as they are.

    Returns:
        The number of norms rewritten.
    """
    outputs_read = {i for node in model.graph.node for i in node.input} | {
        o.name for o in model.graph.output}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    new_axes = opset >= 18  # ReduceMean takes axes as an input from opset 18
    axes = "distillery_ln_axes"
    producer = {o: n.op_type for n in model.graph.node for o in n.output}
    nodes: list[onnx.NodeProto] = []
    count = 0
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        stats = list(node.output[1:3])
        if (_NORMS.get(node.op_type) != node.domain or attrs.get("axis", -1) != -1
                or any(o and o in outputs_read for o in stats)):
            nodes.append(node)
            continue
        p = f"{node.name or node.output[0]}_ln{count}/"
        count += 1
        made = [0]

        def make(op: str, inputs: list[str], outputs: list[str], **kw) -> onnx.NodeProto:
            made[0] += 1
            return onnx.helper.make_node(op, inputs, outputs, name=f"{p}{op}{made[0]}", **kw)  # noqa: B023
        ins = list(node.input) + [""] * 5
        if node.op_type == "SkipLayerNormalization":
            x, gamma, beta = p + "sum", ins[2], ins[3]
            if ins[4]:  # bias first, on the MatMul's output: ORT folds it into the MatMul
                first, other = (ins[1], ins[0]) if producer.get(ins[1]) in _MATMULS \
                    else (ins[0], ins[1])
                nodes.append(make("Add", [first, ins[4]], [p + "sum0"]))
                nodes.append(make("Add", [p + "sum0", other], [x]))
            else:
                nodes.append(make("Add", ins[:2], [x]))
            if len(node.output) > 3 and node.output[3]:
                nodes.append(make("Identity", [x], [node.output[3]]))
        else:
            x, gamma, beta = ins[0], ins[1], ins[2]
        eps = p + "eps"
        model.graph.initializer.append(onnx.numpy_helper.from_array(
            np.array(attrs.get("epsilon", 1e-5), dtype=np.float32), eps))

        def mean(src: str, dst: str) -> onnx.NodeProto:
            if new_axes:
                return make("ReduceMean", [src, axes], [dst], keepdims=1)
            return make("ReduceMean", [src], [dst], axes=[-1], keepdims=1)

        y = node.output[0]
        nodes += [mean(x, p + "mean"), make("Sub", [x, p + "mean"], [p + "centred"]),
                  make("Mul", [p + "centred", p + "centred"], [p + "sq"]),
                  mean(p + "sq", p + "var"), make("Add", [p + "var", eps], [p + "var_eps"]),
                  make("Sqrt", [p + "var_eps"], [p + "std"]),
                  make("Div", [p + "centred", p + "std"], [p + "normed"]),
                  make("Mul", [p + "normed", gamma], [p + "scaled" if beta else y])]
        if beta:
            nodes.append(make("Add", [p + "scaled", beta], [y]))
    if count:
        if new_axes:
            model.graph.initializer.append(
                onnx.numpy_helper.from_array(np.array([-1], dtype=np.int64), axes))
        del model.graph.node[:]
        model.graph.node.extend(nodes)
    return count


_ROW_WISE_UNARY = frozenset({"Gelu", "FastGelu", "Tanh", "Relu", "Sqrt", "Erf", "Sigmoid",
                             "Identity", "Cast", "Neg", "Reciprocal"})
_ROW_WISE_BINARY = frozenset({"Add", "Sub", "Mul", "Div", "Pow", "BiasGelu"})


def _row_wise(node: onnx.NodeProto, constant: Callable[[str], np.ndarray | None]) -> bool:
    """Whether ``node`` computes each position of the sequence axis from that position
    alone: an element-wise op on activations whose constants broadcast over the last axis
    only (rank <= 1), a MatMul of an activation by a constant ``(in, out)`` weight, or a
    reduction or norm over the last axis."""
    consts = [constant(i) if i else None for i in node.input]
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if not node.input or all(c is not None for c in consts):
        return False
    if node.op_type == "MatMul":
        return consts[0] is None and consts[1] is not None and consts[1].ndim == 2
    if node.op_type == "ReduceMean":
        axes = consts[1] if len(node.input) > 1 else attrs.get("axes")
        return (axes is not None and np.asarray(axes).ravel().tolist() == [-1]
                and attrs.get("keepdims", 1) == 1)
    small = all(c is None or c.ndim <= 1 for c in consts)
    if node.op_type in ("LayerNormalization", "SkipLayerNormalization"):
        return small and attrs.get("axis", -1) == -1 and not any(node.output[1:])
    return small and node.op_type in _ROW_WISE_UNARY | _ROW_WISE_BINARY


def gather_pooled_token_early(model: onnx.ModelProto) -> int:
    """Select the pooled token before the encoder's last position-wise ops, in place.

    A classifier reads one position of the last hidden state (BERT's ``[CLS]``:
    ``Gather(axis=1, index=0)``), yet the last layer's attention output projection, residual
    adds, layer norms and FFN run on every position. They are position-wise: this moves the
    ``Gather`` up to the tensors that enter them (the attention's output and the layer's
    input, each ``[batch, seq, hidden]``), so they run on one row. Exact in float32 (the
    rewrite is checked by running both graphs on two input shapes, and undone on any
    difference); under dynamic int8 the activations of those MatMuls get their own scale.

    A node joins the narrowed region only if everything that reads its outputs is in the
    region; attention (which mixes positions) stays outside.

    Returns:
        The number of nodes now computed on one position (0: no such ``Gather``, or nothing
        to move).
    """
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    consts = {n.output[0]: n for n in graph.node if n.op_type == "Constant"}

    def constant(name: str) -> np.ndarray | None:
        if name in inits:
            return onnx.numpy_helper.to_array(inits[name])
        node = consts.get(name)
        if node is not None and node.attribute and node.attribute[0].name == "value":
            return onnx.numpy_helper.to_array(node.attribute[0].t)
        return None

    readers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for i in node.input:
            readers.setdefault(i, []).append(node)
    outputs = {o.name for o in graph.output}
    picks = []  # the pooling Gathers; the last one with position-wise ops before it is used
    for node in graph.node:
        index = constant(node.input[1]) if node.op_type == "Gather" else None
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if (index is not None and index.ndim == 0 and attrs.get("axis", 0) == 1
                and node.input[0] not in outputs and len(readers[node.input[0]]) == 1):
            picks.append(node)
    region: list[onnx.NodeProto] = []
    for pick in reversed(picks):
        region = _position_wise_before(pick, graph, readers, outputs, constant)
        if region:
            break
    if not region:
        return 0
    made = {o for n in region for o in n.output}
    entering = sorted({i for n in region for i in n.input
                       if i and i not in made and constant(i) is None})
    before = model.SerializeToString()
    k = int(constant(pick.input[1]))
    rows, zero = f"{pick.name or 'pooled'}_rows", f"{pick.name or 'pooled'}_first"
    if rows in inits:  # narrowed already
        return 0
    graph.initializer.extend([onnx.numpy_helper.from_array(np.array([k], np.int64), rows),
                              onnx.numpy_helper.from_array(np.array(0, np.int64), zero)])
    for t in entering:
        narrowed = f"{t}_pooled"
        first = min(list(graph.node).index(n) for n in region if t in n.input)
        graph.node.insert(first, onnx.helper.make_node(
            "Gather", [t, rows], [narrowed], axis=1, name=f"{narrowed}_gather"))
        for n in region:
            for j, i in enumerate(n.input):
                if i == t:
                    n.input[j] = narrowed
    pick.input[1] = zero
    if not _same_outputs(before, model):
        model.ParseFromString(before)
        return 0
    _drop_dead(model)  # the pooling's former index, if nothing else reads it
    return len(region)


def _position_wise_before(pick: onnx.NodeProto, graph: onnx.GraphProto,
                          readers: dict[str, list[onnx.NodeProto]], outputs: set[str],
                          constant: Callable[[str], np.ndarray | None]) -> list[onnx.NodeProto]:
    """The position-wise nodes (:func:`_row_wise`) whose outputs only ``pick`` and each other
    read, walking back from ``pick``."""
    region: list[onnx.NodeProto] = []
    inside = {id(pick)}
    for node in reversed(graph.node):  # consumers are decided before their producers
        if id(node) in inside or not node.output or any(o in outputs for o in node.output):
            continue
        reads = [r for o in node.output for r in readers.get(o, [])]
        if reads and all(id(r) in inside for r in reads) and _row_wise(node, constant):
            region.append(node)
            inside.add(id(node))
    return region


def _same_outputs(before: bytes, model: onnx.ModelProto) -> bool:
    """Whether ``model`` gives the outputs of the serialised model ``before`` (float32,
    random ids of two input shapes, tolerance 1e-4 of the outputs' range)."""
    import onnxruntime as ort

    try:
        sessions = [ort.InferenceSession(m, providers=["CPUExecutionProvider"])
                    for m in (before, model.SerializeToString())]
    except Exception:  # noqa: BLE001 - not runnable: leave the graph alone
        return False
    rng = np.random.default_rng(0)
    for batch, seq in ((1, 7), (3, 12)):
        feeds = {}
        for i in sessions[0].get_inputs():
            dtype = np.int64 if "int64" in i.type else np.int32 if "int32" in i.type else None
            if dtype is None:
                return False
            feeds[i.name] = (np.ones((batch, seq), dtype) if "mask" in i.name
                             else np.zeros((batch, seq), dtype) if "type" in i.name
                             else rng.integers(0, 16, (batch, seq)).astype(dtype))
        try:
            want, got = (s.run(None, feeds) for s in sessions)
        except Exception:  # noqa: BLE001 - e.g. ids out of a tiny vocabulary: leave it alone
            return False
        for a, b in zip(want, got, strict=True):
            if a.shape != b.shape or np.abs(a - b).max() > 1e-4 * max(np.ptp(a), 1e-6):
                return False
    return True
