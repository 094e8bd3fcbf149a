"""Prompt lengths: a problem too long for the model is caught before the sampler
allocates memory for it.

The sampler reserves room for prompt + max_new_tokens per row (a KV cache, a static cache on CUDA),
so one 1 MB problem would ask for tens of GB. The limit on a prompt, in tokens, is the model's
context (`config.max_position_embeddings`) minus max_new_tokens, and `max_prompt_tokens` when
that is set and smaller.

- Training problems over the limit are skipped: counted, printed and logged by the loop (a large
  training set may hold a few, and dropping them changes nothing else).
- Evaluation problems over the limit are an error naming the problem: skipping would silently change
  the benchmark.
Prompts are measured exactly as the sampler encodes them (the template applied, `encode_prompts`).
"""
import sys

from nano_forkrl.tasks.data import format_prompt
from nano_forkrl.utils.errors import RunError
from nano_forkrl.sampling import encode_prompts


def prompt_limit(model, max_new_tokens, max_prompt_tokens=0):
    """The longest prompt, in tokens, the sampler may get (None: no limit known). RunError when
    max_new_tokens alone fills the model's context."""
    context = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    limit = None
    if context:
        limit = context - max_new_tokens
        if limit < 1:
            raise RunError(f"max_new_tokens ({max_new_tokens}) leaves no room for a prompt in the "
                           f"model's context of {context} tokens")
    if max_prompt_tokens:
        limit = max_prompt_tokens if limit is None else min(limit, max_prompt_tokens)
    return limit


def prompt_lengths(problems, template, tokenizer):
    """Token count of each problem's prompt as the sampler will see it."""
    prompts = [format_prompt(p["problem"], template, tokenizer) for p in problems]
    return [len(ids) for ids in encode_prompts(tokenizer, prompts)]


def drop_long(problems, template, tokenizer, limit):
    """(the problems whose prompt fits in `limit` tokens, how many were dropped).
    RunError when none fits."""
    if limit is None:
        return list(problems), 0
    lengths = prompt_lengths(problems, template, tokenizer)
    kept = [p for p, n in zip(problems, lengths) if n <= limit]
    if problems and not kept:
        raise RunError(f"every one of the {len(problems)} training problems is longer than the "
                       f"prompt limit of {limit} tokens (--max-prompt-tokens, or the model's "
                       "context minus --max-new-tokens)")
    return kept, len(problems) - len(kept)


def report_skipped(logger, n_skipped, n_total, limit, log=True):
    """Print the count of skipped training problems to stderr and, with `log`, write it to the
    metrics log as {"step": 0, "data": {"skipped_too_long": n, "prompt_limit": limit}}. Nothing when
    none was skipped."""
    if not n_skipped:
        return
    print(f"warning: skipped {n_skipped} of {n_total} training problems longer than {limit} "
          "prompt tokens", file=sys.stderr)
    if log:
        logger.log({"step": 0, "data": {"skipped_too_long": n_skipped, "prompt_limit": limit}})


def check_lengths(problems, template, tokenizer, limit, what="evaluation set"):
    """RunError naming the first problem whose prompt is longer than `limit` tokens
    (None: no limit)."""
    if limit is None:
        return
    lengths = prompt_lengths(problems, template, tokenizer)
    long = [(i, n) for i, n in enumerate(lengths) if n > limit]
    if long:
        i, n = long[0]
        name = problems[i].get("id", i)
        raise RunError(f"{what}: problem {name!r} is a {n}-token prompt, over the limit of {limit} "
                       f"tokens ({len(long)} of {len(problems)} problems are too long); shorten or "
                       "remove them, or lower --max-new-tokens (the limit is the model's context "
                       "minus it, or --max-prompt-tokens)")
