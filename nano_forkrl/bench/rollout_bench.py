"""The rollout half of bench/cli.py: timing helpers and tok/s per sampler (hf, torch, torch-plain,
vllm).

Every sampler gets random prompts of the base vocabulary and must produce exactly new_tokens per row
(no EOS ids; only vLLM may still stop at the tokenizer's EOS, about 1 in 150k tokens, so the tokens
that came out are counted, not assumed). vLLM runs on CUDA (bf16) and on its CPU build (float32, any
model with a head_dim its CPU attention accepts, e.g. 64; not the tiny preset's 16).
"""
import copy
import gc
import resource
import statistics
import time

import torch

from nano_forkrl.engines.factory import close_sampler
from nano_forkrl.engines.torch_sampler import TorchSampler
from nano_forkrl.utils.device import to_dtype

SAMPLERS = ("hf", "torch", "torch-plain", "vllm")


def timed(fn, device):
    """(fn(), seconds); on CUDA synchronised on both sides, so queued kernels are counted."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    out = fn()
    sync()
    return out, time.perf_counter() - start


def measure(rec, device, fn):
    """Fill rec via fn(rec) and add peak memory; an exception becomes rec["error"] instead of
    ending the run."""
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    try:
        fn(rec)
    except Exception as err:  # noqa: BLE001  (reported; the run goes on)
        rec["error"] = f"{type(err).__name__}: {err}"[:300]  # CUDA OOM: "OutOfMemoryError: ..."
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated()
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    rec["peak_mem_gb"] = round(peak / 2**30, 3)
    return rec


def hf_generate(model, tokenizer):
    """HF `generate` as a baseline, on the decoding copy TorchSampler would use (bf16 on CUDA)."""
    dec = to_dtype(copy.deepcopy(model), torch.bfloat16) if model.device.type == "cuda" else model

    def generate(ids, n):
        out = dec.eval().generate(ids, attention_mask=torch.ones_like(ids), do_sample=True,
                                  top_k=0, max_new_tokens=n, min_new_tokens=n,
                                  pad_token_id=tokenizer.pad_token_id, use_cache=True)
        return out[:, ids.shape[1]:].numel()
    return generate, dec


def make_sampler(kind, model, tokenizer, args):
    """(generate(ids [B, P] tensor, n) -> number of new tokens, the sampler). vLLM decodes in bf16
    on CUDA, float32 on CPU."""
    if kind == "hf":
        return hf_generate(model, tokenizer)
    if kind in ("torch", "torch-plain"):
        sampler = TorchSampler(model, tokenizer, max_new_tokens=args.new_tokens,
                               batch_size=max(args.batches), eos_ids=[], seed=0,
                               fast=kind == "torch")
    elif kind == "vllm":
        from nano_forkrl.engines.vllm_sampler import VLLMSampler
        sampler = VLLMSampler(model, tokenizer, max_new_tokens=args.new_tokens, seed=0, eos_ids=[],
                              max_model_len=args.prompt_len + args.new_tokens + 16)
    else:
        raise ValueError(f"unknown sampler {kind!r}: use {', '.join(SAMPLERS)}")

    def generate(ids, n):
        return sum(len(r.response_ids) for r in sampler.generate(ids.tolist(), 1, max_new_tokens=n))
    return generate, sampler


def bench_rollout(kind, model, tokenizer, args, device, on_record=None):
    """Per batch size B: new_tokens per row from random prompts, after an untimed 8-token warm-up
    (warmup_s: graph capture); seconds (wall) and cpu_s (this process's CPU seconds) of the timed
    call; startup_s: building the sampler (the vLLM engine), on the first record only; for vLLM
    also weight_sync_s: the weight push that follows every policy update, median of 5 (all 5 in
    weight_sync_all_s). on_record(rec) runs after each batch size (bench/cli.py writes its JSON
    there)."""
    made, records = {}, []

    def run(rec):
        if not made:
            (made["generate"], made["sampler"]), rec["startup_s"] = timed(
                lambda: make_sampler(kind, model, tokenizer, args), device)
        shape = (rec["batch"], args.prompt_len)
        ids = torch.randint(0, tokenizer.vocab_size, shape, device=device)  # the base vocabulary
        _, rec["warmup_s"] = timed(lambda: made["generate"](ids, min(8, args.new_tokens)), device)
        start_cpu = time.process_time()
        rec["tokens"], rec["seconds"] = timed(
            lambda: made["generate"](ids, args.new_tokens), device)
        rec["cpu_s"] = time.process_time() - start_cpu  # a busy machine distorts it less than wall
        rec["tok_per_s"] = rec["tokens"] / rec["seconds"]
        if kind == "vllm":
            pushes = [timed(lambda: made["sampler"].load_weights(model), device)[1]
                      for _ in range(5)]
            rec["weight_sync_s"], rec["weight_sync_all_s"] = statistics.median(pushes), pushes

    try:
        for B in args.batches:
            rec = {"phase": "rollout", "sampler": kind, "batch": B, "prompt_len": args.prompt_len,
                   "new_tokens": args.new_tokens}
            records.append(measure(rec, device, run))
            if on_record is not None:
                on_record(records[-1])
            # the sampler could not be built: the other batch sizes would fail alike
            if "generate" not in made:
                break
    finally:
        # a vLLM engine's weights, KV cache and graphs, before the next phase
        close_sampler(made.get("sampler"))
    made.clear()
    gc.collect()
    return records
