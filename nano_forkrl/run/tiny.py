"""A model that fits a laptop: a tiny Qwen3, its tokenizer, a synthetic arithmetic task and a cached warm start.

Task: "Compute 17+25-8.\\n" -> "17+25=42\\n42-8=34\\n\\boxed{34}<|im_end|>" (2-4 operands, + and -, every operand,
intermediate and answer in [0, 99]); the reward checks the boxed integer, as for real math data.

Why NOISY demonstrations make a good RL testbed: a real base model can often solve a problem but also puts
probability on wrong continuations, and RLVR works by sharpening a few high-entropy choices (Wang et al. 2025).
The warm start recreates that: it minimises  -sum_t log pi(y_t | x, y_<t)  over the solution tokens y of
demonstrations whose every step result is right with probability p_correct, else a plausible slip (off by 1 or
10, swapped digits), later steps continuing from the written value. It learns  pi(result | "a+b=") ~ p_correct on
the right value, the rest on slips,  while copying operands and "\\boxed{}" stays near-deterministic. So the
FORKING TOKENS are the result digits after each "=": greedy decoding is often right, sampling at temperature 1
often wrong, and RL must move the mass there onto the right digit.
CPU and CUDA: device-agnostic; the cache is an ordinary Hugging Face folder that loads on any device.
"""
import hashlib
import json
import math
import os
import random
import re
import shutil
import tempfile
from itertools import accumulate
from pathlib import Path

import torch
import torch.nn.functional as F

VERSION = 1  # bump to invalidate every cache folder when the task or the training changes
PAD, EOS = "<|endoftext|>", "<|im_end|>"  # Qwen's names; ids 0 and 1 here
# Qwen2/Qwen3 pre-tokenizer regex: `\p{N}` stands alone, so every digit is its own token
QWEN_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
              r"|\s*[\r\n]+|\s+(?!\S)|\s+")
WARM = dict(steps=1000, batch_size=64, lr=1e-2, p_correct=0.65)  # warm-start defaults, all in the cache key
TEST_FRACTION = 10  # one problem string in 10 (by hash) is held out


def build_tiny_tokenizer():
    """Byte-level BPE like Qwen's: 2 specials + 256 bytes + a few merges learned on the task; deterministic."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split(Regex(QWEN_SPLIT), behavior="isolated"),
                                                 pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=[PAD, EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    rng = random.Random(0)
    tok.train_from_iterator([p["problem"] + "\n" + p["solution"] for p in (make_problem(rng) for _ in range(500))],
                            trainer)  # learns "Compute", "\boxed", ".\n", ...
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD, eos_token=EOS,
                                   clean_up_tokenization_spaces=False)


def tiny_config(vocab_size, pad_token_id=0, eos_token_id=1):
    """A 0.12M-parameter Qwen3 (Qwen3-0.6B's architecture: GQA, q/k-norm, SwiGLU, RoPE, tied embeddings). Narrow
    and shallow: on 2 CPU cores it sees ~4x more demonstrations per second than width 128 x 4 layers would."""
    from transformers import Qwen3Config

    return Qwen3Config(vocab_size=vocab_size, hidden_size=64, intermediate_size=192, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
                       tie_word_embeddings=True, pad_token_id=pad_token_id, eos_token_id=eos_token_id,
                       bos_token_id=eos_token_id, dtype="float32")


def make_problem(rng):
    """One random problem {"id", "problem", "answer", "solution"}; every running value stays in [0, 99]."""
    expr = str(value := rng.randint(0, 99))
    for _ in range(rng.randint(1, 3)):
        op = rng.choice("+-") if 0 < value < 99 else ("+" if value == 0 else "-")
        b = rng.randint(1, 99 - value) if op == "+" else rng.randint(1, value)
        value, expr = value + b if op == "+" else value - b, f"{expr}{op}{b}"
    problem = f"Compute {expr}."
    pid = "tiny-" + hashlib.sha256(problem.encode()).hexdigest()[:12]
    return {"id": pid, "problem": problem, "answer": str(value), "solution": solution(problem)}


def parse_problem(problem):
    """"Compute 17+25-8." -> (17, [("+", 25), ("-", 8)])."""
    first = int(re.match(r"Compute (\d+)", problem).group(1))
    return first, [(op, int(b)) for op, b in re.findall(r"([+-])(\d+)", problem)]


def split_of(problem):
    """"test" for a fixed 1/TEST_FRACTION of problem strings (by hash), else "train": never both."""
    return "test" if int(hashlib.sha256(problem.encode()).hexdigest(), 16) % TEST_FRACTION == 0 else "train"


def tiny_problems(split, n, seed=0):
    """n distinct problems of one split as {"id", "problem", "answer"} (the shape of data.load_problems)."""
    assert split in ("train", "test"), split
    rng, seen, out = random.Random(f"{split}-{seed}"), set(), []
    while len(out) < n:
        p = make_problem(rng)
        if split_of(p["problem"]) == split and p["problem"] not in seen:
            seen.add(p["problem"])
            out.append({k: p[k] for k in ("id", "problem", "answer")})
    return out


def _slips(value):
    """Plausible wrong results in [0, 99]: off by one, a carry/borrow slip (off by ten), swapped digits."""
    options = {value - 1, value + 1, value - 10, value + 10, int(f"{value:02d}"[::-1])}
    return sorted(v for v in options if 0 <= v <= 99 and v != value)


def solution(problem, p_correct=1.0, rng=None):
    """The step-by-step solution; with p_correct < 1 a NOISY demonstration: each step's result is right with
    probability p_correct, else a slip; later steps continue from the written (possibly wrong) value and the
    boxed answer is the last written value. A slip must keep the rest of the chain in [0, 99] (if none can,
    rarely, the step stays right)."""
    value, steps = parse_problem(problem)
    deltas = [b if op == "+" else -b for op, b in steps]
    lines = []
    for i, (op, b) in enumerate(steps):
        new = value + deltas[i]
        if p_correct < 1 and rng.random() >= p_correct:
            later = list(accumulate(deltas[i + 1:]))  # offsets of the later values from this one
            new = rng.choice([v for v in _slips(new) if all(0 <= v + d <= 99 for d in later)] or [new])
        lines.append(f"{value}{op}{b}={new}")
        value = new
    return "\n".join(lines) + f"\n\\boxed{{{value}}}"


def _micro_batches(tokenizer, rng, batch_size, p_correct, micro):
    """One batch of fresh train-split demonstrations, length-sorted and cut into right-padded micro-batches:
    (ids, target) with target marking positions whose NEXT token is solution or eos (the prompt is never trained)."""
    problems, pad = [], tokenizer.pad_token_id
    while len(problems) < batch_size:  # the warm start never sees a test problem
        p = make_problem(rng)["problem"]
        problems += [p] if split_of(p) == "train" else []
    prompts = tokenizer([p + "\n" for p in problems])["input_ids"]
    answers = tokenizer([solution(p, p_correct, rng) for p in problems])["input_ids"]
    demos = sorted(((len(q), q + a + [tokenizer.eos_token_id]) for q, a in zip(prompts, answers)),
                   key=lambda d: len(d[1]))
    for chunk in (demos[i:i + micro] for i in range(0, batch_size, micro)):
        ids = torch.tensor([s + [pad] * (len(chunk[-1][1]) - len(s)) for _, s in chunk])
        first = torch.tensor([n - 1 for n, _ in chunk])[:, None]
        yield ids, (torch.arange(ids.shape[1] - 1) >= first) & (ids[:, 1:] != pad)


def warm_start(model, tokenizer, *, steps=WARM["steps"], batch_size=WARM["batch_size"], lr=WARM["lr"],
               p_correct=WARM["p_correct"], seed=0, micro=32):
    """Supervised fine-tune on fresh noisy demonstrations (AdamW, linear warmup, cosine decay); returns the model.
    Length-sorted micro-batches (gradients summed: one step is still one big batch) spend little compute on
    padding. No attention mask is needed: pads are on the right and attention is causal."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    # wd 0.1 / beta2 0.95 made the moment the arithmetic "clicks" much less seed-dependent than 0.01 / 0.98
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.1)
    warmup = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, 0.5 + 0.5 * math.cos(math.pi * s / steps)))
    device = next(model.parameters()).device  # CPU or CUDA: the batch follows the model
    model.train()
    for _ in range(steps):
        batch = [(i.to(device), t.to(device)) for i, t in _micro_batches(tokenizer, rng, batch_size, p_correct, micro)]
        n_target = sum(int(t.sum()) for _, t in batch)
        opt.zero_grad(set_to_none=True)
        for ids, target in batch:
            hidden = model.model(input_ids=ids).last_hidden_state[:, :-1]
            # lm_head only at solution positions: no [batch, seq, vocab] logits tensor is ever built
            loss = F.cross_entropy(model.lm_head(hidden[target]), ids[:, 1:][target], reduction="sum") / n_target
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
    return model.eval()


def load_tiny(cache_dir=None, *, force=False, seed=0, **warm):
    """(model, tokenizer): the warm-started tiny Qwen3 (eval, float32) from its cache folder, built if missing into
    a fresh temp folder renamed into place at the end: a killed build leaves no half cache (its temp is never read)."""
    from transformers import AutoTokenizer, Qwen3ForCausalLM

    settings = {**WARM, **warm}  # folder name: hash of config, warm-start settings, seed and VERSION
    config = {k: v for k, v in tiny_config(300).to_dict().items() if k != "transformers_version"}  # not the model
    key = json.dumps([config, settings, seed, VERSION], sort_keys=True, default=str)
    root = Path(cache_dir or os.environ.get("NANO_FORKRL_CACHE") or Path.home() / ".cache" / "nano_forkrl")
    folder = root / f"tiny-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    if force or not folder.is_dir():
        print(f"nano_forkrl.run.tiny: warm start (about a minute on 2 CPU cores, once) -> {folder}", flush=True)
        tokenizer = build_tiny_tokenizer()
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(tiny_config(len(tokenizer), tokenizer.pad_token_id, tokenizer.eos_token_id))
        warm_start(model, tokenizer, seed=seed, **settings)
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
