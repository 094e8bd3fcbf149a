"""The update half of bench/cli.py: forward + backward + AdamW of the DAPO loss on random tokens,
with MFU.

MFU counts useful FLOPs only (flops.py: 6 N + 12 L d_attn T + 6 d V per token) over the forward +
backward seconds: not the forward that gradient checkpointing re-runs, not AdamW. saved_gb: what
autograd keeps for backward (any device), the diagnostic for whether checkpointing took effect.
"""
import statistics

import torch

from nano_forkrl.entropy import token_logprobs_and_entropy
from nano_forkrl.loss import clipped_pg_loss
from nano_forkrl.entropy import autocast
from nano_forkrl.run.setup.policy import enable_grad_checkpointing
from nano_forkrl.bench.flops import flops_per_token, mfu, non_embedding_params
from nano_forkrl.bench.rollout_bench import measure, timed


def naive_logprobs(model, ids):
    """The baseline: float32 log_softmax over the full [B, T, V] logits (what entropy.py never
    builds)."""
    logp_all = torch.log_softmax(model(input_ids=ids, use_cache=False).logits.float(), dim=-1)
    logp = logp_all[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1).detach()
    return torch.cat([logp, logp.new_zeros(ids.shape[0], 1)], dim=1), entropy


def saved_for_backward(forward, model):
    """GB of the tensors autograd keeps for backward while `forward()` runs, each storage once,
    parameters aside: the activations (with checkpointing, each layer's input only) plus autocast's
    bf16 weight copies on CUDA."""
    params, saved = {p.untyped_storage().data_ptr() for p in model.parameters()}, {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()  # its graph (and so the saved tensors) is freed on return: nothing calls backward
    return sum(n for ptr, n in saved.items() if ptr not in params) / 2**30


def bench_update(model, args, device, naive, repeats=3):
    """Forward + backward of the DAPO loss on B x T random tokens; AdamW timed apart (optim_s);
    medians of repeats. args: update_shape [B, T], grad_ckpt (None: on CUDA only), chunk_size,
    peak_tflops."""
    B, T = args.update_shape
    ckpt = args.grad_ckpt if args.grad_ckpt is not None else device.type == "cuda"

    def run(rec):
        ids = torch.randint(0, model.config.vocab_size, (B, T), device=device)
        adv = torch.randn(B, device=device)
        if ckpt:  # HF checkpoints each decoder layer (train mode only): the forward runs twice
            enable_grad_checkpointing(model)
        # the trainer's optimizer
        opt, times = torch.optim.AdamW(model.train().parameters(), lr=1e-6), []

        def forward():
            with autocast(model):
                if naive:
                    logp, _ = naive_logprobs(model, ids)
                else:
                    logp, _ = token_logprobs_and_entropy(model, ids, chunk_size=args.chunk_size,
                                                         with_grad=True)
                loss_tok, _ = clipped_pg_loss(logp, logp.detach(), adv, eps_low=0.2,
                                              eps_high=0.28)  # ratio 1
            return loss_tok[:, :-1].mean()  # the last position has no next token

        try:
            rec["saved_gb"] = saved_for_backward(forward, model)  # an extra, untimed forward
            for _ in range(1 + repeats):  # step 1 (it also allocates the AdamW state) is a warm-up
                step_s = timed(lambda: forward().backward(), device)[1]
                times.append((step_s, timed(opt.step, device)[1]))
                opt.zero_grad()
        finally:  # also after an OOM: free the gradients, leave the model as it was
            model.zero_grad(set_to_none=True)
            enable_grad_checkpointing(model, enable=False)
        rec["seconds"], rec["optim_s"] = (statistics.median(t[i] for t in times[1:])
                                          for i in (0, 1))
        rec["tokens"], rec["tok_per_s"] = B * T, B * T / rec["seconds"]
        flops = flops_per_token(model.config, non_embedding_params(model), T) * B * T
        rec["tflops"] = flops / rec["seconds"] / 1e12
        rec["mfu"] = mfu(flops, rec["seconds"], args.peak_tflops)

    rec = {"phase": "naive_update" if naive else "update", "batch": B, "seq_len": T,
           "grad_ckpt": ckpt, "chunk_size": None if naive else args.chunk_size}
    return measure(rec, device, run)
