"""A model that fits a laptop: a tiny Qwen3, its tokenizer and a cached warm start on the
arithmetic task.

The task (`nano_forkrl.tasks.arithmetic`): "Compute 17+25-8.\\n" ->
"17-8=9\\n9+25=34\\n\\boxed{34}<|im_end|>", the terms applied in any order that keeps every running
value in [0, 99]; the reward checks the boxed integer.

Why a SHORT warm start on CORRECT demonstrations makes a fair RL testbed: a real base model can
often solve a problem but also puts probability on wrong continuations, and RLVR sharpens its
high-entropy choices (Wang et al. 2025). The warm start minimises  -sum_t log pi(y_t | x, y_<t)
over correct demonstrations only, and stops before the small model has learnt the task: its
mistakes are whatever it has not learnt yet, not errors we injected at a chosen token class. Its
uncertainty has two sources: the free choice of the next term (the demonstrations pick uniformly
among valid ones, so every such choice is right) and the computation it has not mastered. Where the
high-entropy tokens fall is then measured (tutorials/09), not built in. CPU and CUDA:
device-agnostic; the cache is an ordinary Hugging Face folder that loads on any device.
"""
import hashlib
import json
import math
import os
import random
import shutil
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

from nano_forkrl.tasks import arithmetic, chain
# parse_problem is re-exported for callers of tiny.py
from nano_forkrl.tasks.arithmetic import (make_problem, parse_problem, solution,  # noqa: F401
                                           split_of)

VERSION = 2  # bump to invalidate every cache folder when the task or the training changes
PAD, EOS = "<|endoftext|>", "<|im_end|>"  # Qwen's names; ids 0 and 1 here
# Qwen2/Qwen3 pre-tokenizer regex: `\p{N}` stands alone, so every digit is its own token
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
              r"| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
# the task's splits (tasks/arithmetic.py), under the loop's name
tiny_problems = arithmetic.tiny_problems
# warm-start defaults, all in the cache key
WARM = dict(steps=1100, batch_size=64, lr=1e-2, order="free")
NAME = "tiny"  # the embedded CPU job's name as a model, a data source and a random: model's source
CHAIN = "chain"  # the long-chain testbed (tasks/chain.py) as a model and a data source
# the tasks the builder warm-starts on (each module has make_problem, solution and split_of):
# the tiny preset's arithmetic and the long-chain testbed
TASKS = {NAME: arithmetic, CHAIN: chain}


def task_of(name):
    """The embedded task that `name` (--model, --train-data/--eval-data, or the source of
    random:NAME) stands for: "tiny" (NAME: the tiny preset's arithmetic), "chain" (CHAIN), else
    None."""
    return "tiny" if name == NAME else CHAIN if name == CHAIN else None


def is_tiny(name):
    """Does `name` mean one of the embedded CPU jobs (task_of)? The one owner of that decision:
    data loading, model loading, the memory plan and evaluation's defaults ask here."""
    return task_of(name) is not None


def task_problems(name, split, n, seed=0):
    """n distinct problems of `split` of the embedded task that `name` stands for."""
    draw = chain.chain_problems if task_of(name) == CHAIN else arithmetic.tiny_problems
    return draw(split, n, seed=seed)


def build_tiny_tokenizer(task=arithmetic):
    """Byte-level BPE like Qwen's: 2 specials + 256 bytes + a few merges learned on `task` (a
    module of TASKS); deterministic."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    split = pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated")
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [split, pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=[PAD, EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    rng = random.Random(0)
    demos = (task.make_problem(rng) for _ in range(500))
    texts = [p["problem"] + "\n" + p["solution"] for p in demos]
    tok.train_from_iterator(texts, trainer)  # learns "Compute", "\boxed", ".\n", ...
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS,
                                   clean_up_tokenization_spaces=False)


def tiny_config(vocab_size, pad_token_id=0, eos_token_id=1):
    """A 0.12M-parameter Qwen3 (Qwen3-0.6B's architecture: GQA, q/k-norm, SwiGLU, RoPE, tied
    embeddings). Narrow and shallow, so that the warm start and RL both run on 2 CPU cores."""
    from transformers import Qwen3Config

    return Qwen3Config(vocab_size=vocab_size, hidden_size=64, intermediate_size=192,
                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                       head_dim=16, max_position_embeddings=256, tie_word_embeddings=True,
                       pad_token_id=pad_token_id, eos_token_id=eos_token_id,
                       bos_token_id=eos_token_id, dtype="float32")


def _micro_batches(tokenizer, rng, batch_size, order, micro, task=arithmetic):
    """One batch of fresh correct train-split demonstrations (`order` "free" or "fixed", see
    arithmetic.py), length-sorted and cut into right-padded micro-batches: (ids, target) with target
    marking positions whose NEXT token is solution or eos (the prompt is never trained)."""
    problems, pad = [], tokenizer.pad_token_id
    while len(problems) < batch_size:  # the warm start never sees a test problem
        p = task.make_problem(rng)["problem"]
        problems += [p] if task.split_of(p) == "train" else []
    prompts = tokenizer([p + "\n" for p in problems])["input_ids"]
    solutions = [task.solution(p, rng if order == "free" else None) for p in problems]
    answers = tokenizer(solutions)["input_ids"]
    demos = sorted(((len(q), q + a + [tokenizer.eos_token_id]) for q, a in zip(prompts, answers)),
                   key=lambda d: len(d[1]))
    for chunk in (demos[i:i + micro] for i in range(0, batch_size, micro)):
        ids = torch.tensor([s + [pad] * (len(chunk[-1][1]) - len(s)) for _, s in chunk])
        first = torch.tensor([n - 1 for n, _ in chunk])[:, None]
        yield ids, (torch.arange(ids.shape[1] - 1) >= first) & (ids[:, 1:] != pad)


def warm_start(model, tokenizer, *, steps=WARM["steps"], batch_size=WARM["batch_size"],
               lr=WARM["lr"], order=WARM["order"], seed=0, micro=32, task=arithmetic):
    """Supervised fine-tune on fresh correct demonstrations (AdamW, linear warmup, cosine decay);
    returns the model.
    Length-sorted micro-batches (gradients summed: one step is still one big batch) spend little
    compute on padding. No attention mask is needed: pads are on the right and attention is causal.
    """
    rng = random.Random(seed)
    torch.manual_seed(seed)
    # wd 0.1 / beta2 0.95 made the moment the arithmetic "clicks" much less
    # seed-dependent than 0.01 / 0.98
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, 0.5 + 0.5 * math.cos(math.pi * s / steps)))
    device = next(model.parameters()).device  # CPU or CUDA: the batch follows the model
    model.train()
    for _ in range(steps):
        batch = [(i.to(device), t.to(device))
                 for i, t in _micro_batches(tokenizer, rng, batch_size, order, micro, task)]
        n_target = sum(int(t.sum()) for _, t in batch)
        opt.zero_grad(set_to_none=True)
        for ids, target in batch:
            hidden = model.model(input_ids=ids).last_hidden_state[:, :-1]
            # lm_head only at solution positions: no [batch, seq, vocab] logits tensor is ever built
            logits = model.lm_head(hidden[target])
            loss = F.cross_entropy(logits, ids[:, 1:][target], reduction="sum") / n_target
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return model.eval()


def load_tiny(cache_dir=None, *, force=False, seed=0, task=NAME, **warm):
    """(model, tokenizer): the tiny Qwen3 warm-started on `task` (a name of TASKS; eval, float32)
    from its cache folder, built if missing into a fresh temp folder renamed into place at the end:
    a killed build leaves no half cache (its temp is never read)."""
    from transformers import AutoTokenizer, Qwen3ForCausalLM

    # folder name: hash of config, warm-start settings, seed and VERSION
    settings = {**WARM, **warm}
    # the config without transformers_version: that names the library, not the model
    config = {k: v for k, v in tiny_config(300).to_dict().items() if k != "transformers_version"}
    # another task adds its name: the tiny preset's key (and cache folder) stay what they were
    key = json.dumps([config, settings, seed, VERSION] + ([task] if task != NAME else []),
                     sort_keys=True, default=str)
    default = Path.home() / ".cache" / "nano_forkrl"
    root = Path(cache_dir or os.environ.get("NANO_FORKRL_CACHE") or default)
    folder = root / f"{task}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if force or not folder.is_dir():
        print(f"nano_forkrl.tasks.tiny: warm start (once, then cached) -> {folder}",
              flush=True)
        tokenizer = build_tiny_tokenizer(TASKS[task])
        torch.manual_seed(seed)
        shape = tiny_config(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id)
        model = Qwen3ForCausalLM(shape)
        warm_start(model, tokenizer, seed=seed, task=TASKS[task], **settings)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}-tmp-", dir=folder.parent))
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        if force and folder.is_dir():
            shutil.rmtree(folder)
        try:
            os.replace(tmp, folder)  # atomic: the folder appears complete or not at all
        except OSError:  # another process put its build there first: keep that one
            shutil.rmtree(tmp)
    model = Qwen3ForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(folder)
