"""How good is the model: avg@k and pass@k with the training sampler and verifier.

For each problem we draw k samples and count c correct ones (reward from `verify.reward`):

    avg@k  = mean over problems of c / k                      (the paper's "avg@16" metric)
    pass@k = mean over problems of 1 - C(n - c, k) / C(n, k)   (unbiased estimator, Chen et al.
                                                                2021; with n = k samples it is 1
                                                                when c > 0)

The same sampler as training is used (temperature, top-p, max tokens), with a fixed seed so that
scores at different training steps are comparable.

The command line: tools/evaluate.py
(`python -m nano_forkrl.tools.evaluate --model PATH --bench aime24 --k 8`).
"""
from math import comb
from pathlib import Path

from nano_forkrl.run.persist.checkpoint import load_state
from nano_forkrl.tasks.data import format_prompt
from nano_forkrl.tasks.tiny import task_of
from nano_forkrl.verify import reward


def pass_at_k(n, c, k):
    """Unbiased pass@k from n samples with c correct (needs n >= k)."""
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def evaluate(sampler, problems, *, k=1, template="plain", tokenizer=None, seed=1234,
             max_new_tokens=None, verifier="ours"):
    """avg@k and pass@k of `sampler` on `problems`, scored by `verifier` (verify.VERIFIERS). Returns
    {"avg@k", "pass@k", "n_problems", "k", "mean_length", "per_problem": [c_i, ...]}."""
    state = sampler.rng_state()
    sampler.reseed(seed)  # fixed evaluation noise; training's RNG stream is restored below
    try:
        prompts = [format_prompt(p["problem"], template, tokenizer) for p in problems]
        rollouts = sampler.generate(prompts, n=k, max_new_tokens=max_new_tokens)
    finally:
        sampler.set_rng_state(state)
    correct = [0] * len(problems)
    for r in rollouts:
        answer = problems[r.prompt_index]["answer"]
        correct[r.prompt_index] += reward(r.text, answer, verifier=verifier) > 0
    return summarize(correct, k, sum(len(r.response_ids) for r in rollouts))


def summarize(correct, k, total_length):
    """evaluate's result from the correct counts per problem (k samples each) and the summed
    response length (also how a distributed evaluation combines its shares,
    run/place/distributed.py)."""
    n = max(len(correct), 1)
    return {
        f"avg@{k}": sum(c / k for c in correct) / n,
        f"pass@{k}": sum(pass_at_k(k, c, k) for c in correct) / n,
        "n_problems": len(correct), "k": k,
        "mean_length": total_length / max(len(correct) * k, 1),
        "per_problem": correct,
    }


def cli_defaults(model, bench, template, max_new_tokens, long):
    """(bench, template, max_new_tokens), each as given, else from what the model is. A checkpoint
    of ours knows its training config (trainer_state.pt, read lazily with mmap); the tiny model, by
    name or trained on the tiny task, gets the tiny held-out set, the plain template and the
    preset's 48 tokens (the chain model: the chain set and its preset's 160); any other model
    math500, the boxed template and `long` tokens."""
    state = Path(str(model)) / "trainer_state.pt"
    # load_state never runs the file's code
    trained = load_state(state, mmap=True).get("config", {}) if state.exists() else {}
    # the embedded task (tasks/tiny.py) the model, the set or the training data names, if any
    task = task_of(model) or task_of(bench) or task_of(trained.get("train_data"))
    return (bench or task or trained.get("eval_data") or "math500",
            template or trained.get("template") or ("plain" if task else "boxed"),
            max_new_tokens or trained.get("max_new_tokens") or (_budget(task) if task else long))


def _budget(task):
    """The response budget of the embedded task's preset (run/setup/config.py owns it)."""
    from nano_forkrl.run.setup.config import Config, PRESETS

    return PRESETS[task].get("max_new_tokens", Config.max_new_tokens)
