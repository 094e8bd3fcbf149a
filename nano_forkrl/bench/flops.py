"""How much arithmetic one training token costs, and what share of the GPU's peak a run achieves
(MFU).

A dense decoder does one multiply-add (2 FLOPs) per weight per token in the forward pass and twice
that in the backward pass (one product for the activations' gradient, one for the weights'
gradient): 3 x 2 = 6 FLOPs per weight per token. Two terms are not "weights x tokens":
  - attention: q.k^T and probs.v take 2 x 2 x d_attn x T FLOPs per layer per token in the forward
    pass (T = the sequence length attended over, d_attn = heads x head_dim), so 12 x L x d_attn x T
    with the backward; we count the full T x T matrix (PaLM's convention) although a causal mask
    makes half of it zeros;
  - the output head: d x V weights, 6 x d x V, also when tied to the input embedding (a lookup:
    0 FLOPs).

    flops_per_token = 6 N + 12 L d_attn T + 6 d V
    N = non-embedding parameters (blocks + final norm)

MFU (model FLOPs utilisation, PaLM, Chowdhery et al. 2022) = flops_per_token x tokens / seconds /
peak FLOP/s. Only useful work counts: the extra forward that gradient checkpointing runs (another
2 N + 4 L d_attn T per token) is NOT added, so checkpointing lowers MFU; optimizer steps are not
model FLOPs either. Peaks: dense bf16 tensor-core FLOP/s from NVIDIA's data sheets (the "with
sparsity" figures are twice these). Pure arithmetic on a config and a parameter count: no tensors,
same on CPU and CUDA.
"""
# first match wins
PEAK_TFLOPS = {"H100 PCIe": 756.0, "H100": 989.0, "H200": 989.0, "A100": 312.0}


def non_embedding_params(model):
    """N: all parameters except the input embedding and the output head (a tied pair is one
    tensor)."""
    skip = {id(model.get_input_embeddings().weight), id(model.get_output_embeddings().weight)}
    return sum(p.numel() for p in model.parameters() if id(p) not in skip)


def flops_per_token(config, n_non_embedding, seq_len):
    """Useful forward + backward FLOPs per token of a length-seq_len sequence (formula above)."""
    c = config
    head_dim = getattr(c, "head_dim", None) or c.hidden_size // c.num_attention_heads
    d_attn = c.num_attention_heads * head_dim
    return (6 * n_non_embedding + 12 * c.num_hidden_layers * d_attn * seq_len
            + 6 * c.hidden_size * c.vocab_size)


def peak_tflops(device_name):
    """Dense bf16 peak of a GPU by its name (torch.cuda.get_device_name), None when unknown (e.g. a
    CPU)."""
    return next((tf for key, tf in PEAK_TFLOPS.items() if key in device_name), None)


def mfu(flops, seconds, peak):
    """Achieved FLOP/s over the peak (in TFLOP/s); None without a peak."""
    return flops / seconds / (peak * 1e12) if peak else None
