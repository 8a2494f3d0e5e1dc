"""Parameter shapes of Llama-2-shaped models, shared by the benchmarks."""

from __future__ import annotations


def llama_shapes(
    layers: int, hidden: int, intermediate: int, kv_hidden: int, vocab: int = 32000
) -> list[tuple[str, tuple[int, ...]]]:
    """(name, shape) of every parameter, in model order."""
    out: list[tuple[str, tuple[int, ...]]] = [("embed_tokens.weight", (vocab, hidden))]
    for i in range(layers):
        p = f"layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", (hidden, hidden)),
            (p + "self_attn.k_proj.weight", (kv_hidden, hidden)),
            (p + "self_attn.v_proj.weight", (kv_hidden, hidden)),
            (p + "self_attn.o_proj.weight", (hidden, hidden)),
            (p + "mlp.gate_proj.weight", (intermediate, hidden)),
            (p + "mlp.up_proj.weight", (intermediate, hidden)),
            (p + "mlp.down_proj.weight", (hidden, intermediate)),
            (p + "input_layernorm.weight", (hidden,)),
            (p + "post_attention_layernorm.weight", (hidden,)),
        ]
    out += [("norm.weight", (hidden,)), ("lm_head.weight", (vocab, hidden))]
    return out


LLAMA_70B = llama_shapes(layers=80, hidden=8192, intermediate=28672, kv_hidden=1024)
# About 250M parameters: the materialisation benchmark's working set.
LLAMA_250M = llama_shapes(
    layers=7, hidden=1536, intermediate=4096, kv_hidden=1536, vocab=16000
)
