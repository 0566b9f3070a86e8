"""The causal LM itself, compressed and served: generation variants with a KV cache on ONNX
Runtime (fp32, weight-only int8, int4 ``MatMulNBits``), greedy generation, their validation
against torch fp32, a tokens-per-second benchmark, and generic-vs-specialised answers.

- :mod:`~distillery.llm.export`: a causal LM -> one ONNX decoder with past key/values in and
  present key/values out (the same graph prefills, with an empty past, and decodes);
- :mod:`~distillery.llm.recipes`: the weight recipes (one registry);
- :mod:`~distillery.llm.runtime`: one interface over ONNX Runtime and torch: log-probs of a
  token list, greedy generation with timings;
- :mod:`~distillery.llm.validate`: greedy tokens, classification through the verbalizers and
  perplexity of a variant against torch fp32;
- :mod:`~distillery.llm.bench`: time to first token, decode tokens/s, peak memory;
- :mod:`~distillery.llm.answers`: the generic and the specialised model's answers side by side.
"""
