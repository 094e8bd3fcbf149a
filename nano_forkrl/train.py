"""The loop: DAPO on the top-rho forking tokens (Wang et al. 2025: DAPO with an entropy mask).

One training step (train_step), each arrow one call:

    prompts --sampling, verify,--> RolloutBatch: ids, masks, rewards r_i   (collect_rollouts: the
              advantage, data      and advantages A_i of the groups kept    sampler, verify.reward,
                                                                            DAPO's shaping and
                                                                            dynamic sampling)
            --entropy---> old log-probs, entropy H_t   (score: no grad, chunked over tokens)
            --masking---> trained tokens = top-rho(H_t) over the batch's response tokens
            --update----> clipped surrogate on the trained tokens, an optimizer step per mini-batch
            --sampling--> new weights into the rollout engine  (sampler.load_weights)

Every call that differs between one process and torchrun's N goes through the run's `place`
(run/place/single.py: OneProcess; run/place/distributed.py: Ranks): the loop has one code path.
Run `python -m nano_forkrl.train` (tiny CPU preset) or `--preset qwen3-0.6b` etc.; `--help` lists
every flag. `torchrun --nproc_per_node N -m nano_forkrl.train ...` runs this loop on N processes.
Outputs in --out-dir: metrics.jsonl (one line per step), checkpoint/ (a plain HF folder +
trainer_state.pt), TensorBoard events when tensorboard is installed. `--resume` continues a killed
run at the same step with the same data order and RNG streams.
"""
import json
import sys
from dataclasses import asdict
from pathlib import Path

import torch
import transformers

from nano_forkrl.engines.factory import close_sampler, make_sampler
from nano_forkrl.entropy import entropy_statistics
from nano_forkrl.run.persist.metrics import Logger, Quiet, print_eval_change, timed
from nano_forkrl.run.persist.resume import restore_run
from nano_forkrl.run.persist.rundir import plan, prepare
from nano_forkrl.run.place.distributed import quiet_other_ranks, setup
from nano_forkrl.run.place.single import OneProcess
from nano_forkrl.run.safety.guard import GuardedOptimizer, check_step
from nano_forkrl.run.safety.stop import Stop, holding
from nano_forkrl.run.setup.bounds import check_lengths, drop_long, prompt_limit, report_skipped
from nano_forkrl.run.setup.config import parse_args, to_dict
from nano_forkrl.run.setup.memcheck import check as check_memory, report as memory_report
from nano_forkrl.run.setup.policy import enable_grad_checkpointing, load_policy
from nano_forkrl.run.setup.validate import update_settings
from nano_forkrl.run.steps.batch import mini_batches, score
from nano_forkrl.run.steps.rollouts import collect_rollouts
from nano_forkrl.tasks.data import HELD_OUT, load_split
from nano_forkrl.update import policy_step
from nano_forkrl.utils.errors import cli
from nano_forkrl.utils.seeds import generator as seeded


def train_step(cfg, model, optimizer, sampler, tokenizer, problems, cursor, place=OneProcess(),
               ref_model=None):
    """One step of the module docstring's diagram: (the new prompt cursor, the step's record)."""
    settings, timer = update_settings(cfg, place.sum), {}
    with timed(timer, "rollout"):  # sampling, verify, advantage (+ DAPO's dynamic sampling)
        batch, cursor, stats = collect_rollouts(cfg, sampler, tokenizer, problems, cursor, place)
    if batch is None:  # every group had equal rewards: nothing to learn from this batch
        return cursor, {**stats, "no_groups": True, "time": timer}
    with timed(timer, "logprobs"):  # the rollout policy is the current weights: old log-probs, H_t
        entropy = score(batch, cfg, place, model, ref_model)
        response = batch.response_mask.bool()
        batch.token_mask = settings.selection.for_batch(entropy, response,
                                                        generator=seeded("mask", cfg.seed, cursor))
    stats.update(_entropy_stats(entropy, response))
    with timed(timer, "update"):  # bf16 autocast around the forward passes on CUDA
        updates = [policy_step(model, optimizer, mini, settings)
                   for mini in mini_batches(batch, cfg, cursor, place)]
    with timed(timer, "sync"):  # the next rollouts come from the updated policy
        sampler.load_weights(place.full_view(model))
    stats.update(_mean_of(updates))
    stats["rollout_tok_per_s"] = batch.response_mask.sum().item() / max(timer["rollout"], 1e-9)
    n_tokens = cfg.ppo_epochs * batch.attention_mask.sum().item()
    stats["update_tok_per_s"] = n_tokens / max(timer["update"], 1e-9)
    return cursor, {**stats, "time": timer}


def _entropy_stats(entropy, mask):
    """The paper's Sec. 3 statistics of this batch's chain-of-thought tokens."""
    if not mask.any():
        return {}
    h = entropy_statistics(entropy, mask)
    return {f"entropy_{k}": h[k] for k in ("mean", "p50", "p80", "share_below_0.01")}


def _mean_of(updates):
    """The policy steps' UpdateStats averaged over the mini-batches (nonfinite: share skipped)."""
    for u in updates:
        if u.nonfinite:
            print(f"warning: non-finite loss or gradient, optimizer step skipped ({u})",
                  file=sys.stderr)
    rows = [asdict(u) for u in updates]
    return {key: sum(float(u[key]) for u in rows) / len(rows) for key in rows[0]}


# `held`: the run folder's lock and the signal handlers, given back on any exit (run/safety/stop.py)
@holding
def train(cfg, held):
    """Runs the loop described in the module docstring. Returns the list of logged records. Before
    anything is written: the run folder is checked (an existing run is never replaced without
    --resume or --overwrite), the model and data are loaded and prompts over the length limit are
    found. An optimizer step that leaves non-finite weights or an exploding update is undone; a run
    whose steps keep failing stops with a RunError, its last checkpoint intact
    (`run/safety/guard.py`)."""
    place = setup(cfg)  # this process's place: OneProcess, or under torchrun its rank (run/place/)
    torch.manual_seed(cfg.seed)
    ckpt = plan(cfg)  # RunError instead of overwriting a run; touches nothing
    source = str(ckpt) if ckpt is not None else None
    # the memory plan (run/setup/memplan.py): a RunError naming the cheapest fixes before any
    # weight loads
    check_memory(cfg, place.world, source=source)  # this run's processes, not --gpus
    with place.main_first():  # torchrun: rank 0 loads first (it builds the tiny cache or downloads)
        model, tokenizer = load_policy(source or cfg.model, cfg.device, cfg.dtype, seed=cfg.seed)
    if cfg.grad_ckpt:
        enable_grad_checkpointing(model)
    # optional KL to the initial policy (off by default, as in DAPO): a frozen copy of the start
    ref_model = None
    if cfg.kl_coef > 0:
        ref_model = load_policy(cfg.model, cfg.device, cfg.dtype, seed=cfg.seed)[0].eval()
    model, engine, ref_model = place.policy(model, cfg.sampler, ref_model)  # engine: to decode
    problems = load_split(cfg.train_data, "train", seed=cfg.seed)
    held_out = load_split(cfg.eval_data, HELD_OUT, limit=cfg.eval_n or None)
    limit = prompt_limit(model, cfg.max_new_tokens, cfg.max_prompt_tokens)
    problems, n_long = drop_long(problems, cfg.template, tokenizer, limit)
    check_lengths(held_out, cfg.template, tokenizer, limit, what=f"held-out set {cfg.eval_data!r}")
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    guard = GuardedOptimizer(optimizer, enabled=cfg.step_guard)  # run/safety/guard.py
    sampler = make_sampler(cfg.sampler, engine, tokenizer, max_new_tokens=cfg.max_new_tokens,
                           top_p=cfg.top_p,
                           seed=place.seed(cfg.seed),  # torchrun: one stream per rank
                           temperature=cfg.temperature, gpu_memory_utilization=cfg.vllm_gpu_memory)
    held.callback(close_sampler, sampler)  # a vLLM engine's memory is freed on any exit
    step, cursor, data, changes = restore_run(cfg, ckpt, problems, optimizer, sampler, place)
    if place.main:  # torchrun: rank 0 alone writes the log
        held.enter_context(prepare(cfg))  # the first write to disk: every input above is valid
    logger, records = Logger(cfg.out_dir, step) if place.main else Quiet(), []
    if changes:
        logger.log({"step": step, "config_changes": changes})
    # (a resume logged it before)
    report_skipped(logger, n_long, n_long + len(problems), limit, log=step == 0)

    def run_eval(at):
        # torchrun: shares of the problems, gathered
        result = place.evaluate(sampler, held_out, k=cfg.eval_k, template=cfg.template,
                                tokenizer=tokenizer, verifier=cfg.verifier)
        rec = {"step": at, "eval": {k: v for k, v in result.items() if k != "per_problem"}}
        logger.log(rec)
        records.append(rec)
        shown = " ".join(f"{k}={v:.3f}" for k, v in rec["eval"].items() if isinstance(v, float))
        print(f"[eval step {at}] {shown}")

    if step == 0:
        run_eval(0)
    from tqdm.auto import tqdm
    bar = tqdm(range(step, cfg.steps), initial=step, total=cfg.steps, desc="train",
               disable=None if place.main else True)
    failed, stops = 0, held.enter_context(Stop())  # from here a signal means: save, then exit
    for step in bar:
        cursor, stats = train_step(cfg, model, guard, sampler, tokenizer, problems, cursor, place,
                                   ref_model)
        failed = check_step(stats, guard, step + 1, failed, cfg.out_dir)
        rec = {"step": step + 1, **stats}
        logger.log(rec)
        records.append(rec)
        bar.set_postfix(acc=f"{stats['accuracy']:.2f}", len=f"{stats['response_length']:.0f}")
        done = step + 1 == cfg.steps
        if (cfg.eval_every and (step + 1) % cfg.eval_every == 0) or done:
            run_eval(step + 1)
        saving = cfg.save_every and (step + 1) % cfg.save_every == 0 or (done and cfg.final_save)
        if stops.requested(place) or saving:  # torchrun: rank 0 writes the full state
            place.save(cfg.out_dir, model, tokenizer, optimizer, sampler, step + 1, cursor, cfg,
                       data)
        # after a signal: the message and exit status (run/safety/stop.py)
        stops.exit_if(step + 1, cfg)
    return records


def main(argv=None):
    """The command line: one `error: ...` line instead of a traceback for any failure
    (utils/errors.py)."""
    return cli(_main, argv)


def _main(argv):
    cfg = parse_args(argv)
    if cfg.plan:  # --plan: the memory plan per device, then exit (no weights loaded, no GPU needed)
        print(memory_report(cfg)[1])
        return []
    quiet_other_ranks()  # torchrun: rank 0 alone prints
    transformers.utils.logging.disable_progress_bar()  # no "Loading weights" bar per load
    print("config: " + json.dumps(to_dict(cfg)))
    records = train(cfg)
    # also the steps before a --resume
    print_eval_change(Path(cfg.out_dir) / "metrics.jsonl", cfg.eval_k)
    return records


if __name__ == "__main__":
    main()
