"""The loop: DAPO on the top-rho forking tokens (Wang et al. 2025, Alg. = DAPO with an entropy mask).

One training step, each arrow one call into a concept module:

    prompts --sampling--> G responses each          (rollouts.collect_rollouts: sampler.generate,
            --verify----> rewards r_i                  verify.reward, DAPO overlong shaping and dynamic sampling)
            --advantage-> A_i, groups kept            (group_advantages, dynamic_sampling_keep)
            --data------> input_ids, labels, response_mask   (collate_rollouts)
            --entropy---> old log-probs, entropy H_t  (no grad, chunked over tokens)
            --masking---> forking mask = top-rho(H_t) over the batch's response tokens
            --update----> clipped surrogate on the masked tokens, mini-batch optimizer steps
            --sampling--> new weights into the rollout engine  (sampler.load_weights)

Run `python -m nano_forkrl.train` (tiny CPU preset) or `--preset qwen3-0.6b` etc.; `--help` lists every flag.
`torchrun --nproc_per_node N -m nano_forkrl.train ...` runs this loop on N processes (run/place/distributed.py).
Outputs in --out-dir: metrics.jsonl (one line per step), checkpoint/ (a plain HF folder + trainer_state.pt),
TensorBoard events when tensorboard is installed. `--resume` continues a killed run at the same step with
the same data order and RNG streams.
"""
import contextlib
import json
import sys
import time
from pathlib import Path

import torch
import transformers

from nano_forkrl.advantage import ESTIMATORS, group_advantages
from nano_forkrl.entropy import entropy_statistics, score_batch
from nano_forkrl.update import policy_step
from nano_forkrl.engines.factory import close_sampler, make_sampler
from nano_forkrl.run.setup.bounds import check_lengths, drop_long, prompt_limit, report_skipped
from nano_forkrl.run.persist.checkpoint import save_checkpoint
from nano_forkrl.run.setup.config import parse_args, to_dict, update_settings
from nano_forkrl.tasks.data import collate_rollouts, load_split
from nano_forkrl.run.place.distributed import place, quiet_other_ranks, setup
from nano_forkrl.utils.errors import cli
from nano_forkrl.run.safety.guard import GuardedOptimizer, check_step
from nano_forkrl.run.setup.memcheck import check as check_memory, report as memory_report
from nano_forkrl.run.persist.metrics import Logger, Quiet, print_eval_change, timed
from nano_forkrl.run.setup.policy import enable_grad_checkpointing, load_policy
from nano_forkrl.run.persist.resume import restore_run
from nano_forkrl.run.steps.rollouts import collect_rollouts
from nano_forkrl.run.persist.rundir import plan, prepare
from nano_forkrl.utils.seeds import generator as seeded
from nano_forkrl.run.safety.stop import Stop, holding
from nano_forkrl.run.steps.evaluation import evaluate


def train_step(cfg, model, optimizer, sampler, tokenizer, problems, cursor, ref_model=None, ranks=None):
    """One step of the module docstring's diagram; returns the new prompt cursor and the step's statistics."""
    settings, timer = update_settings(cfg, ranks), {}
    with timed(timer, "rollout"):  # sampling + verify (+ DAPO's dynamic sampling and overlong shaping)
        groups, cursor, stats = collect_rollouts(cfg, sampler, tokenizer, problems, cursor, ranks)
    if not groups:  # every group had equal rewards: nothing to learn from this batch
        return cursor, {**stats, "skipped": True, "time": timer}
    rollouts = [r for rs, _ in groups for r in rs]
    scores = torch.cat([s for _, s in groups])
    advantages = group_advantages(scores, cfg.group_size, normalize_std=ESTIMATORS[cfg.advantage])
    batch = collate_rollouts([r.prompt_ids for r in rollouts], [r.response_ids for r in rollouts], sampler.pad_id)
    with timed(timer, "logprobs"):  # the rollout policy is the current weights: old log-probs and H_t, no grad
        score = dict(micro_batch_size=cfg.micro_batch_size, temperature=cfg.temperature, chunk_size=cfg.chunk_size)
        scorer = score_batch if ranks is None else ranks.score_batch  # torchrun: rows split, results gathered
        old_logprobs, entropy = scorer(model, batch, **score)
        ref_logprobs = scorer(ref_model, batch, **score)[0] if ref_model is not None else None  # the KL term
        mask = batch["response_mask"].bool()
        token_mask = settings.selection.for_batch(entropy, mask, generator=seeded("mask", cfg.seed, cursor))
    stats.update(_entropy_stats(entropy, mask))
    updates, rows = [], cfg.mini_batch_prompts * cfg.group_size
    with timed(timer, "update"):
        for epoch in range(cfg.ppo_epochs):
            order = torch.randperm(len(rollouts), generator=seeded("order", cfg.seed, cursor, epoch))
            for s in range(0, len(rollouts), rows):
                idx = order[s:s + rows] if ranks is None else ranks.share(order[s:s + rows])
                updates.append(policy_step(  # bf16 autocast around its forward passes on CUDA
                    model, optimizer, {k: v[idx] for k, v in batch.items()}, old_logprobs=old_logprobs[idx],
                    advantages=advantages[idx], token_mask=None if token_mask is None else token_mask[idx],
                    ref_logprobs=None if ref_logprobs is None else ref_logprobs[idx], settings=settings))
    with timed(timer, "sync"):  # the next rollouts come from the updated policy
        sampler.load_weights(model if ranks is None else ranks.full_view(model))
    stats.update(_mean_of(updates))
    stats["rollout_tok_per_s"] = sum(len(r.response_ids) for r in rollouts) / max(timer["rollout"], 1e-9)
    n_tokens = cfg.ppo_epochs * batch["attention_mask"].sum().item()
    stats["update_tok_per_s"] = n_tokens / max(timer["update"], 1e-9)
    return cursor, {**stats, "time": timer}


def _entropy_stats(entropy, mask):
    """The paper's Sec. 3 statistics of this batch's chain-of-thought tokens."""
    if not mask.any():
        return {}
    h = entropy_statistics(entropy, mask)
    return {f"entropy_{k}": h[k] for k in ("mean", "p50", "p80", "share_below_0.01")}


def _mean_of(updates):
    """The policy steps' statistics averaged over the step's mini-batches (a skipped one is reported)."""
    for u in updates:
        if u.get("skipped"):
            print(f"warning: non-finite loss or gradient, optimizer step skipped ({u})", file=sys.stderr)
    return {key: sum(float(u[key]) for u in updates) / len(updates) for key in updates[0]}


@holding  # `held`: the run folder's lock and the signal handlers, given back on any exit (run/safety/stop.py)
def train(cfg, held):
    """Runs the loop described in the module docstring. Returns the list of logged records. Before anything
    is written: the run folder is checked (an existing run is never replaced without --resume
    or --overwrite), the model and data are loaded and prompts over the length limit are found. An optimizer
    step that leaves non-finite weights or an exploding update is undone; a run whose steps keep failing stops
    with a RunError, its last checkpoint intact (`run/safety/guard.py`)."""
    ranks = setup(cfg)  # None in one process; under torchrun this rank's place (run/place/distributed.py)
    torch.manual_seed(cfg.seed)
    ckpt = plan(cfg)  # RunError instead of overwriting a run; touches nothing
    resuming = ckpt is not None
    # the memory plan (run/setup/memplan.py): a RunError naming the cheapest fixes before any weight loads
    check_memory(cfg, 1 if ranks is None else ranks.world,  # this run's processes, not --gpus
                 source=str(ckpt) if resuming else None)
    with contextlib.nullcontext() if ranks is None else ranks.main_first():  # torchrun: rank 0 loads first
        model, tokenizer = load_policy(str(ckpt) if resuming else cfg.model, cfg.device, cfg.dtype,
                                       seed=cfg.seed)
    if cfg.grad_ckpt:
        enable_grad_checkpointing(model)
    # optional KL to the initial policy (off by default, as in DAPO): a frozen copy of the starting weights
    ref_model = load_policy(cfg.model, cfg.device, cfg.dtype, seed=cfg.seed)[0].eval() if cfg.kl_coef > 0 else None
    model, engine, ref_model = place(ranks, model, cfg.sampler, ref_model)  # engine: what the sampler decodes
    problems = load_split(cfg.train_data, "train", seed=cfg.seed)
    held_out = load_split(cfg.eval_data, "test", limit=cfg.eval_n or None)
    limit = prompt_limit(model, cfg.max_new_tokens, cfg.max_prompt_tokens)
    problems, n_long = drop_long(problems, cfg.template, tokenizer, limit)
    check_lengths(held_out, cfg.template, tokenizer, limit, what=f"held-out set {cfg.eval_data!r}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    guard = GuardedOptimizer(optimizer, enabled=cfg.step_guard)  # what train_step steps (run/safety/guard.py)
    sampler = make_sampler(cfg.sampler, engine, tokenizer, max_new_tokens=cfg.max_new_tokens, top_p=cfg.top_p,
                           seed=cfg.seed if ranks is None else ranks.seed(cfg.seed),  # torchrun: one per rank
                           temperature=cfg.temperature, gpu_memory_utilization=cfg.vllm_gpu_memory)
    held.callback(close_sampler, sampler)  # a vLLM engine's memory is freed on any exit
    step, cursor, data, changes = restore_run(cfg, ckpt, problems, optimizer, sampler, ranks)  # run/persist/resume.py
    if (main := ranks is None or ranks.main):  # torchrun: rank 0 alone writes the log
        held.enter_context(prepare(cfg))  # the first write to disk: every input above is valid; the lock
    logger, records = Logger(cfg.out_dir, step) if main else Quiet(), []
    if changes:
        logger.log({"step": step, "config_changes": changes})
    report_skipped(logger, n_long, n_long + len(problems), limit, log=step == 0)  # a resume logged it before

    def run_eval(at):
        run = evaluate if ranks is None else ranks.evaluate  # torchrun: shares of the problems, gathered
        result = run(sampler, held_out, k=cfg.eval_k, template=cfg.template, tokenizer=tokenizer,
                     verifier=cfg.verifier)
        rec = {"step": at, "eval": {k: v for k, v in result.items() if k != "per_problem"}}
        logger.log(rec)
        records.append(rec)
        shown = " ".join(f"{k}={v:.3f}" for k, v in rec["eval"].items() if isinstance(v, float))
        print(f"[eval step {at}] {shown}")

    if step == 0:
        run_eval(0)
    from tqdm.auto import tqdm
    bar = tqdm(range(step, cfg.steps), initial=step, total=cfg.steps, desc="train",
               disable=None if main else True)
    failed, stops = 0, held.enter_context(Stop())  # from here a signal means: save, then exit
    for step in bar:
        cursor, stats = train_step(cfg, model, guard, sampler, tokenizer, problems, cursor, ref_model, ranks)
        failed = check_step(stats, guard, step + 1, failed, cfg.out_dir)
        rec = {"step": step + 1, **stats}
        logger.log(rec)
        records.append(rec)
        bar.set_postfix(acc=f"{stats['accuracy']:.2f}", len=f"{stats['response_length']:.0f}")
        done = step + 1 == cfg.steps
        if (cfg.eval_every and (step + 1) % cfg.eval_every == 0) or done:
            run_eval(step + 1)
        if stops.requested(ranks) or (cfg.save_every and (step + 1) % cfg.save_every == 0) or (done and cfg.final_save):
            save = save_checkpoint if ranks is None else ranks.save  # torchrun: rank 0 writes the full state
            save(cfg.out_dir, model, tokenizer, optimizer, sampler, step + 1, cursor, cfg, data)
        stops.exit_if(step + 1, cfg)  # after a signal: the message and exit status (run/safety/stop.py)
    return records


def main(argv=None):
    """The command line: one `error: ...` line instead of a traceback for any failure (see utils/errors.py)."""
    return cli(_main, argv)


def _main(argv):
    cfg = parse_args(argv)
    if cfg.plan:  # --plan: the memory plan per device, then exit (no weights loaded, no GPU needed)
        print(memory_report(cfg)[1])
        return []
    quiet_other_ranks()  # torchrun: rank 0 alone prints
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar per load and checkpoint
    print("config: " + json.dumps(to_dict(cfg)))
    records = train(cfg)
    print_eval_change(Path(cfg.out_dir) / "metrics.jsonl", cfg.eval_k)  # also the steps before a --resume
    return records


if __name__ == "__main__":
    main()
