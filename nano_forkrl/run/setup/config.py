"""Every knob of the loop in one dataclass (with its --help text), the presets, the command line.

Presets
- `tiny` (default): the embedded CPU job: a warm-started tiny Qwen3 on the synthetic task of
  `nano_forkrl.tasks.tiny`, a few minutes on 2 CPU cores.
- `chain`: the long-chain testbed of `nano_forkrl.tasks.chain` (tutorials/results/powered/PLAN.md,
  Plan B): the same tiny Qwen3 warm-started on chains of restated state, 80-150 response tokens.
- `qwen3-0.6b`, `qwen3-1.7b`, `qwen3-4b`, `qwen3-8b`: the paper's DAPO recipe scaled to one GPU
  node.
  The paper (Wang et al. 2025, on top of DAPO) used 512 prompts x 16 responses per rollout batch,
  mini-batches of 32 prompts (16 gradient steps per batch), lr 1e-6, eps_low 0.2 / eps_high 0.28, no
  KL, temperature 1.0, max response 20,480 tokens with a 4,096-token overlong buffer, dynamic
  sampling, token-mean loss, rho 0.2. On one node we keep every algorithmic setting and shrink the
  sizes: 64 prompts x 16 responses, mini-batches of 16 prompts (4 gradient steps per batch), max
  response 4,096 (0.6B/1.7B) or 8,192 (4B/8B) tokens with a 1,024/2,048 buffer. These presets are a
  documented starting point, not a reproduced result. By the memory plan (run/setup/memplan.py,
  `--plan`; `GPUS`), 0.6B and 1.7B fit one 80 GB GPU (vLLM asleep during the update), 4B needs four
  and 8B eight (torchrun, FSDP2; 8B: micro-batches of 4).
Choice lists come from the tables that define them (data.TEMPLATES, masking.MODES,
loss.AGGREGATIONS, ...). Validation of the values: `run/setup/validate.py`.
"""
import argparse
from dataclasses import asdict, dataclass, field, fields

from nano_forkrl.advantage import ESTIMATORS
from nano_forkrl.engines.factory import CHOICES as SAMPLERS
from nano_forkrl.loss import AGGREGATIONS
from nano_forkrl.masking import MODES, SOURCES
from nano_forkrl.tasks.data import TEMPLATES
from nano_forkrl.run.setup.policy import DTYPES
from nano_forkrl.run.setup.validate import validate
from nano_forkrl.verify import VERIFIERS


def knob(default, help, choices=None):
    """A Config field with its command-line help and, where the value is one of a table's names,
    its choices."""
    choices = tuple(choices) if choices else None
    return field(default=default, metadata={"help": help, "choices": choices})


@dataclass
class Config:
    # model and data
    model: str = knob("tiny", "hub name, local folder (save_pretrained), 'tiny' (the embedded CPU "
                      "model) or 'random:DIR' (DIR's config.json with random weights, for speed "
                      "and memory only)")
    train_data: str = knob("tiny", "training problems: a vendored set, a JSONL/parquet file or "
                           "folder, a hub dataset name, or 'tiny' (the embedded synthetic task)")
    eval_data: str = knob("tiny", "held-out problems evaluated while training: a vendored set "
                                  "(aime24, aime25, amc23, math500, gsm8k), a path, or 'tiny' "
                                  "(its validation split)")
    template: str = knob("plain", "prompt template (tasks/data.py)", TEMPLATES)
    verifier: str = knob("ours", "answer checker of the reward: ours (verify.py) or math-verify "
                         "(optional package)", VERIFIERS)
    eval_n: int = knob(200, "problems per evaluation (0 = all)")
    eval_k: int = knob(4, "samples per problem at evaluation: avg@k and pass@k")
    eval_every: int = knob(25, "steps between evaluations (0 = only at the start and the end)")
    # rollouts
    steps: int = knob(300, "training steps (one rollout batch each)")
    prompts_per_step: int = knob(32, "prompts per rollout batch")
    group_size: int = knob(8, "G: responses sampled per prompt")
    max_new_tokens: int = knob(48, "response budget in tokens")
    max_prompt_tokens: int = knob(0, "longer training prompts are skipped (counted and logged), "
                                  "longer held-out ones are an error; 0 = the model's context "
                                  "minus max_new_tokens")
    temperature: float = knob(1.0, "sampling temperature (also used for the training log-probs)")
    top_p: float = knob(1.0, "nucleus sampling: keep the smallest set of tokens with this much "
                        "mass")
    sampler: str = knob("auto", "rollout engine: auto (vLLM on CUDA when installed, else torch)",
                        SAMPLERS)
    vllm_gpu_memory: float = knob(0.35, "share of GPU memory the colocated vLLM engine may take")
    # rewards and advantages
    reward_correct: float = knob(1.0, "reward of a correct answer (CS336: 1/0, DAPO: +1/-1; "
                                 "advantage.py)")
    reward_wrong: float = knob(0.0, "reward of a wrong or missing answer")
    advantage: str = knob("grpo", "grpo: (r - mean) / (std + eps); drgrpo: r - mean", ESTIMATORS)
    dynamic_sampling: bool = knob(True, "DAPO: drop groups whose rewards are all equal and sample "
                                  "more prompts")
    max_gen_batches: int = knob(3, "at most this many rollout batches to fill one training batch")
    gen_prompts: int = knob(0, "prompts sampled per generation round with dynamic sampling "
                            "(DAPO's gen batch; 0 = prompts_per_step; the surplus is dropped)")
    overlong_buffer: int = knob(0, "DAPO soft overlong punishment over the last N tokens of the "
                                "budget (0 = off)")
    overlong_factor: float = knob(1.0, "the overlong punishment at the full budget")
    # forking tokens
    rho: float = knob(0.2, "share of response tokens that get the policy gradient (1.0 = all: "
                      "plain DAPO)")
    mask_mode: str = knob("top", "which rho: top (forking tokens), bottom (the other 1 - rho), "
                          "random", MODES)
    mask_source: str = knob("rollout", "rollout: old-policy entropy ranked over the whole batch "
                            "(the paper); current: current-policy entropy per micro-batch (the "
                            "released code)", SOURCES)
    per_sequence: bool = knob(False, "rank within each response instead of across the batch")
    # update
    lr: float = knob(5e-4, "AdamW learning rate")
    weight_decay: float = knob(0.0, "AdamW decoupled weight decay")
    mini_batch_prompts: int = knob(8, "prompts per optimizer step (x G sequences)")
    micro_batch_size: int = knob(64, "sequences per forward/backward (gradient accumulation "
                                 "inside a step)")
    ppo_epochs: int = knob(1, "passes over each rollout batch")
    eps_low: float = knob(0.2, "lower clip of the ratio: 1 - eps_low")
    eps_high: float = knob(0.28, "upper clip of the ratio: 1 + eps_high (DAPO's clip-higher)")
    dual_clip: float = knob(0.0, "dual-clip bound c > 1 for negative advantages (0 = off; verl's "
                            "default is 3)")
    loss_agg: str = knob("token-mean", "loss normaliser (loss.aggregate)", AGGREGATIONS)
    kl_coef: float = knob(0.0, "weight of the k3 KL to the initial policy (0 = none, as in DAPO)")
    entropy_coef: float = knob(0.0, "entropy bonus: - entropy_coef x H_t in the loss of the "
                               "trained tokens (0 = none; the paper's Sec. 6 alternative to "
                               "clip-higher)")
    max_grad_norm: float = knob(1.0, "gradient clipping by global norm (0 = off)")
    chunk_size: int = knob(1024, "tokens per output-head chunk when computing log-probs and "
                           "entropy")
    grad_ckpt: bool = knob(False, "recompute decoder layers in backward (long sequences on a GPU)")
    step_guard: bool = knob(True, "undo an optimizer step that leaves non-finite weights or moves "
                            "them by more than half their norm (costs one copy of the weights and "
                            "optimizer state)")
    # run
    seed: int = knob(0, "seed of every random stream (utils/seeds.py)")
    device: str = knob("auto", "auto (CUDA when available), cpu, cuda or cuda:N")
    dtype: str = knob("auto", "weights: auto = float32 masters (+ bf16 autocast on CUDA), or bf16",
                      DTYPES)
    out_dir: str = knob("runs/tiny", "run folder: metrics.jsonl and checkpoint/")
    resume: bool = knob(False, "continue the run in out_dir from its newest complete checkpoint")
    overwrite: bool = knob(False, "replace the run in out_dir (otherwise an existing run is never "
                           "touched)")
    accept_config_changes: bool = knob(False, "--resume even when the configuration or training "
                                       "data differ from the checkpoint's (the new values are "
                                       "used and logged; run/persist/resume.py)")
    debug: bool = knob(False, "full tracebacks instead of one-line errors (also "
                       "NANO_FORKRL_DEBUG=1)")
    save_every: int = knob(25, "steps between checkpoints (0 = only at the end)")
    final_save: bool = knob(True, "a checkpoint at the end of the run (--no-final-save: none, "
                            "e.g. in speed checks)")
    preset: str = knob("tiny", "starting values, overridden by any other flag")
    # memory plan (run/setup/memplan.py), checked before any weight is loaded
    plan: bool = knob(False, "print the memory plan per device and exit (no weights or GPU needed)")
    gpus: int = knob(0, "GPUs --plan assumes (0 = WORLD_SIZE, else 1; a run checks its processes)")
    gpu_memory: float = knob(0.0, "GiB per GPU the plan is for (0 = this machine's GPU, 80 without "
                                  "one; with --device cpu: GiB of RAM, 0 = the host's)")


def _qwen3(name, max_new_tokens, buffer):
    return dict(model=f"Qwen/{name}-Base", train_data="BytedTsinghua-SIA/DAPO-Math-17k",
                eval_data="aime24", template="boxed", eval_n=0, eval_k=16, eval_every=20, steps=200,
                prompts_per_step=64, group_size=16, max_new_tokens=max_new_tokens,
                overlong_buffer=buffer, lr=1e-6, weight_decay=0.1, mini_batch_prompts=16,
                micro_batch_size=8, chunk_size=2048, grad_ckpt=True, out_dir=f"runs/{name.lower()}",
                save_every=10)


PRESETS = {
    # lr: chosen on validation for top 20% (tutorials/09_experiment.ipynb); gen_prompts stays 0
    # (32 a round): 40, 48, 64 or 96 cost as much rollout time per step or more (measured)
    "tiny": dict(lr=1e-4, steps=200),
    # the long-chain testbed (tasks/chain.py): responses of 80-150 tokens; lr not tuned for it
    "chain": dict(model="chain", train_data="chain", eval_data="chain", max_new_tokens=160, lr=1e-4,
                  steps=100, out_dir="runs/chain"),
    "qwen3-0.6b": _qwen3("Qwen3-0.6B", 4096, 1024),
    "qwen3-1.7b": _qwen3("Qwen3-1.7B", 4096, 1024),
    "qwen3-4b": _qwen3("Qwen3-4B", 8192, 2048),
    "qwen3-8b": {**_qwen3("Qwen3-8B", 8192, 2048), "micro_batch_size": 4},
}
# the 80 GB GPUs each qwen3 preset needs by the memory plan (tests/run/setup/test_memcheck.py,
# README)
GPUS = {"qwen3-0.6b": 1, "qwen3-1.7b": 1, "qwen3-4b": 4, "qwen3-8b": 8}


def parse_args(argv=None):
    """Preset first, then any flag overrides it: `--preset qwen3-0.6b --rho 1.0 --model /path`."""
    ap = argparse.ArgumentParser(prog="python -m nano_forkrl.train",
                                 description="RLVR with DAPO on the top-rho forking tokens.")
    for f in fields(Config):
        flag = "--" + f.name.replace("_", "-")
        if f.name == "preset":
            ap.add_argument(flag, default="tiny",
                            help=f"{f.metadata['help']}: one of {sorted(PRESETS)}")
        elif f.type in (bool, "bool"):
            ap.add_argument(flag, action=argparse.BooleanOptionalAction, default=None,
                            help=f"{f.metadata['help']} (default: {f.default})")
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(f.type), f.type)
            ap.add_argument(flag, type=kind, default=None, choices=f.metadata["choices"],
                            help=f"{f.metadata['help']} (default: {f.default})")
    args = ap.parse_args(argv)
    if args.preset not in PRESETS:
        ap.error(f"unknown preset {args.preset!r}; choose from {sorted(PRESETS)}")
    values = {**PRESETS[args.preset], "preset": args.preset}
    values.update({k: v for k, v in vars(args).items() if v is not None and k != "preset"})
    return validate(Config(**values))


def to_dict(cfg):
    return asdict(cfg)
