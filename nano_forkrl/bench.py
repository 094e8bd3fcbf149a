"""Benchmark: tokens/s, peak memory and MFU per phase of an RL step, for one model, device and batch shape.

    python -m nano_forkrl.bench     # tiny preset, small shapes, current device (< 1 min on a 2-core CPU)
    python -m nano_forkrl.bench --model DIR --batches 64,256 --new-tokens 512 --update-shape 8x4096 --naive-update

Weights are random (policy.random_policy: DIR needs only config.json + tokenizer files), float32 masters as in
training. Every measurement runs in try/except: a failure (e.g. CUDA OOM) becomes its "error", the run goes on.
MFU counts useful FLOPs only (flops.py: 6 N + 12 L d_attn T + 6 d V per token) over the forward + backward seconds:
not the forward that gradient checkpointing re-runs, not AdamW. peak_mem_gb: CUDA's max_memory_allocated per
measurement, on CPU the process's peak RSS so far; saved_gb: what autograd keeps for backward (any device).
"""
import argparse
import copy
import gc
import importlib.util
import json
import resource
import statistics
import time

import torch
import transformers

from nano_forkrl.entropy import token_logprobs_and_entropy
from nano_forkrl.tools.flops import flops_per_token, mfu, non_embedding_params, peak_tflops
from nano_forkrl.loss import clipped_pg_loss
from nano_forkrl.run.device import to_dtype
from nano_forkrl.run.policy import autocast, enable_grad_checkpointing, load_policy, pick_device
from nano_forkrl.engines.torch_sampler import TorchSampler


def timed(fn, device):
    """(fn(), seconds); on CUDA synchronised on both sides, so queued kernels are counted."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - start


def measure(rec, device, fn):
    """Fill rec via fn(rec) and add peak memory; an exception becomes rec["error"] instead of ending the run."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        fn(rec)
    except Exception as err:  # noqa: BLE001  (a benchmark reports failures, it does not stop at them)
        rec["error"] = f"{type(err).__name__}: {err}"[:300]  # CUDA OOM: "OutOfMemoryError: ..."
    peak = torch.cuda.max_memory_allocated() if device.type == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    rec["peak_mem_gb"] = round(peak / 2**30, 3)
    return rec


def make_sampler(kind, model, tokenizer, args):
    """(generate(ids [B, P] tensor, n) -> number of new tokens, the sampler). vLLM decodes in the model's dtype."""
    if kind == "hf":
        dec = to_dtype(copy.deepcopy(model), torch.bfloat16) if model.device.type == "cuda" else model  # as TorchSampler
        return (lambda ids, n: dec.eval().generate(
            ids, attention_mask=torch.ones_like(ids), do_sample=True, max_new_tokens=n, min_new_tokens=n, top_k=0,
            pad_token_id=tokenizer.pad_token_id, use_cache=True)[:, ids.shape[1]:].numel()), dec
    if kind in ("torch", "torch-plain"):
        sampler = TorchSampler(model, tokenizer, max_new_tokens=args.new_tokens, batch_size=max(args.batches),
                               eos_ids=[], seed=0, fast=kind == "torch")
    elif kind == "vllm":  # may still stop at the tokenizer's EOS (~1 in 150k tokens): we count what came out
        from nano_forkrl.engines.vllm_sampler import VLLMSampler
        sampler = VLLMSampler(model, tokenizer, max_new_tokens=args.new_tokens, seed=0, eos_ids=[],
                              max_model_len=args.prompt_len + args.new_tokens + 16)
    else:
        raise ValueError(f"unknown sampler {kind!r}: use hf, torch, torch-plain or vllm")
    return lambda ids, n: sum(len(r.response_ids) for r in sampler.generate(ids.tolist(), 1, max_new_tokens=n)), sampler


def bench_rollout(kind, model, tokenizer, args, device):
    """Per batch size B: new_tokens per row (no EOS) from random prompts, after an untimed 8-token warm-up (warmup_s:
    graph capture); startup_s: building the sampler (vLLM engine); vLLM weight_sync_s: load_weights, median of 5."""
    made = {}

    def run(rec):
        if not made:
            (made["generate"], made["sampler"]), rec["startup_s"] = timed(
                lambda: make_sampler(kind, model, tokenizer, args), device)
        ids = torch.randint(0, tokenizer.vocab_size, (rec["batch"], args.prompt_len), device=device)  # base vocab
        _, rec["warmup_s"] = timed(lambda: made["generate"](ids, min(8, args.new_tokens)), device)
        rec["tokens"], rec["seconds"] = timed(lambda: made["generate"](ids, args.new_tokens), device)
        rec["tok_per_s"] = rec["tokens"] / rec["seconds"]
        if kind == "vllm":  # the weight push that follows every policy update
            rec["weight_sync_s"] = statistics.median(
                timed(lambda: made["sampler"].load_weights(model), device)[1] for _ in range(5))
    return [measure({"phase": "rollout", "sampler": kind, "batch": B, "prompt_len": args.prompt_len,
                     "new_tokens": args.new_tokens}, device, run) for B in args.batches]


def naive_logprobs(model, ids):
    """The baseline: float32 log_softmax over the full [B, T, V] logits (what entropy.py never builds)."""
    logp_all = torch.log_softmax(model(input_ids=ids, use_cache=False).logits.float(), dim=-1)
    logp = logp_all[:, :-1].gather(-1, ids[:, 1:, None]).squeeze(-1)
    return torch.cat([logp, logp.new_zeros(ids.shape[0], 1)], dim=1), -(logp_all.exp() * logp_all).sum(-1).detach()


def saved_for_backward(forward, model):
    """GB of the tensors autograd keeps for backward while `forward()` runs, each storage once, parameters aside:
    the activations (with checkpointing, each layer's input only) plus autocast's bf16 weight copies on CUDA."""
    params, saved = {p.untyped_storage().data_ptr() for p in model.parameters()}, {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        forward()  # its graph (and so the saved tensors) is freed on return: nothing calls backward
    return sum(n for ptr, n in saved.items() if ptr not in params) / 2**30


def bench_update(model, args, device, naive, repeats=3):
    """Forward + backward of the DAPO loss on B x T random tokens; AdamW timed apart (optim_s); medians of repeats."""
    (B, T), ckpt = args.update_shape, args.grad_ckpt if args.grad_ckpt is not None else device.type == "cuda"

    def run(rec):
        ids, adv = torch.randint(0, model.config.vocab_size, (B, T), device=device), torch.randn(B, device=device)
        if ckpt:  # HF checkpoints each decoder layer (train mode only): the forward runs twice
            enable_grad_checkpointing(model)
        opt, times = torch.optim.AdamW(model.train().parameters(), lr=1e-6), []  # the trainer's optimizer

        def forward():
            with autocast(model):
                logp, _ = naive_logprobs(model, ids) if naive else token_logprobs_and_entropy(
                    model, ids, chunk_size=args.chunk_size, with_grad=True)
                loss_tok, _ = clipped_pg_loss(logp, logp.detach(), adv, eps_low=0.2, eps_high=0.28)  # ratio 1
            return loss_tok[:, :-1].mean()  # the last position has no next token

        try:
            rec["saved_gb"] = saved_for_backward(forward, model)  # an extra, untimed forward
            for _ in range(1 + repeats):  # step 1 (it also allocates the AdamW state) is a warm-up
                times.append((timed(lambda: forward().backward(), device)[1], timed(opt.step, device)[1]))
                opt.zero_grad()
        finally:  # also after an OOM: free the gradients, leave the model as it was
            model.zero_grad(set_to_none=True)
            enable_grad_checkpointing(model, enable=False)
        rec["seconds"], rec["optim_s"] = (statistics.median(t[i] for t in times[1:]) for i in (0, 1))
        rec["tokens"], rec["tok_per_s"] = B * T, B * T / rec["seconds"]
        flops = flops_per_token(model.config, non_embedding_params(model), T) * B * T
        rec["tflops"], rec["mfu"] = flops / rec["seconds"] / 1e12, mfu(flops, rec["seconds"], args.peak_tflops)
    return measure({"phase": "naive_update" if naive else "update", "batch": B, "seq_len": T, "grad_ckpt": ckpt,
                    "chunk_size": None if naive else args.chunk_size}, device, run)


def table(phases):
    lines = [f"{'phase':13}{'what':18}{'tok/s':>11}{'seconds':>9}{'peak GB':>9}{'saved GB':>9}{'MFU':>7}  error"]
    for p in phases:
        what = f"{p['sampler']} B={p['batch']}" if "sampler" in p else f"{p['batch']}x{p['seq_len']}"
        util = f"{p['mfu']:.1%}" if p.get("mfu") is not None else ""
        saved = f"{p['saved_gb']:.3f}" if "saved_gb" in p else ""
        lines.append(f"{p['phase']:13}{what:18}{p.get('tok_per_s', 0):11.0f}{p.get('seconds', 0):9.3f}"
                     f"{p['peak_mem_gb']:9.2f}{saved:>9}{util:>7}  {p.get('error', '')}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Speed and memory per phase of an RL step (see module docstring).")
    ap.add_argument("--model", default="tiny", help='"tiny" or a folder with config.json and tokenizer files')
    ap.add_argument("--device", default="auto")
    ap.add_argument("--batches", default="2,8", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument("--prompt-len", type=int, default=32)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--samplers", default=None, help="comma list of hf,torch,torch-plain,vllm (default: all usable)")
    ap.add_argument("--update-shape", default="2x128", type=lambda s: [int(x) for x in s.split("x")])
    ap.add_argument("--chunk-size", type=int, default=2048)
    ap.add_argument("--grad-ckpt", action=argparse.BooleanOptionalAction, default=None, help="default: on CUDA only")
    ap.add_argument("--naive-update", action="store_true", help="also run the full-logits baseline")
    ap.add_argument("--peak-tflops", type=float, default=None, help="default: flops.PEAK_TFLOPS by GPU name")
    ap.add_argument("--out", default="bench.json")
    args = ap.parse_args(argv)
    device = pick_device(args.device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    args.peak_tflops = args.peak_tflops or peak_tflops(name)
    with_vllm = device.type == "cuda" and importlib.util.find_spec("vllm") is not None
    samplers = (args.samplers or "hf,torch,torch-plain" + ",vllm" * with_vllm).split(",")
    model, tokenizer = load_policy(f"random:{args.model}", device)  # float32 master weights, as in training
    phases = [r for kind in samplers if kind != "vllm" for r in bench_rollout(kind, model, tokenizer, args, device)]
    phases.append(bench_update(model, args, device, naive=False))
    if args.naive_update:
        phases.append(bench_update(model, args, device, naive=True))
    if "vllm" in samplers:  # last: the engine keeps its share of GPU memory until the process ends
        phases += bench_rollout("vllm", model, tokenizer, args, device)
    result = {"device": name, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "transformers": transformers.__version__, "args": vars(args), "phases": phases,
              "model": {"name": args.model, "params": sum(p.numel() for p in model.parameters()),
                        "non_embedding_params": non_embedding_params(model), "config": model.config.to_diff_dict()}}
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1, default=str)
    print(table(phases) + f"\nwrote {args.out}")
    return result


if __name__ == "__main__":
    main()
