"""Tests for nano_forkrl/engines/vllm_sampler.py against a real vLLM engine: vLLM's CPU build here
(float32, so greedy tokens must equal TorchSampler's exactly), the GPU build on a CUDA machine
(bf16, equal up to near-ties).

The model is Qwen3-shaped where it matters to vLLM: head_dim 64 (vLLM's CPU attention refuses the
tiny preset's 16) and Qwen3's 151,936-row embedding, with the real Qwen3 tokenizer (151,669 ids)
when tests/conftest.py finds it, else the tiny tokenizer (then the unused ids are masked by the
allowed-id list instead of the logit bias); the loop's tests (resume, torchrun) train one with the
tiny tokenizer and a 320-row embedding instead. One engine serves most of the module (starting one
costs 10-60 s on 2 cores); each test pushes its own weights. The tests that start engines of their
own (close, the loop, torchrun) come after every user of that engine."""
import importlib.util
import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch
from conftest import (copied_at_save, greedy_rows_equal_up_to_ties, needs_cuda, qwen3_shaped,
                      tiny_prompts, vocab_tokenizer)

from nano_forkrl.engines.torch_sampler import TorchSampler
from nano_forkrl.engines.vllm_sampler import MAX_IDS, check_version, source_folder, unused_id_mask
from nano_forkrl.entropy import token_logprobs_and_entropy
from nano_forkrl.run.persist.metrics import read_log
from nano_forkrl.tasks.data import collate_rollouts
from nano_forkrl.sampling import Rollout

pytestmark = pytest.mark.skipif(importlib.util.find_spec("vllm") is None,
                                reason="vllm is not installed (README, 'Install': the CPU build "
                                       "for laptops and CI)")
DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
GiB = 2**30


@pytest.fixture(scope="module")
def engine():
    from nano_forkrl.engines.vllm_sampler import VLLMSampler

    tok = vocab_tokenizer()
    model = qwen3_shaped(tok).to(DEVICE)
    # no graph capture: the loop part of the GPU checks has it
    sampler = VLLMSampler(model, tok, max_new_tokens=24, temperature=0, gpu_memory_utilization=0.2,
                          enforce_eager=True)
    yield sampler, tok
    sampler.close()


def _assert_same_greedy(model, a, b):
    """CPU, float32 on both sides: the same tokens. CUDA, a bf16 engine: a row may part from the
    other only at a near-tie of the float32 model (tests/conftest.py raises at any other
    divergence)."""
    if DEVICE == "cpu":
        assert [x.response_ids for x in a] == [y.response_ids for y in b]
    else:
        greedy_rows_equal_up_to_ties(model, a, b)


def test_version_gate_and_the_unused_id_mask():
    check_version("0.26.0")
    check_version("0.32.0")
    for bad in ("0.25.2", "0.34.0", "1.0.0"):
        with pytest.raises(RuntimeError, match="not supported"):
            check_version(bad)
    assert unused_id_mask(151_669, 151_936) == {
        "logit_bias": {i: -100.0 for i in range(151_669, 151_936)}}
    assert unused_id_mask(300, 151_936) == {"allowed_token_ids": list(range(300))}
    assert unused_id_mask(64, 64) == {}
    with pytest.raises(ValueError, match="1024"):
        unused_id_mask(5_000, 151_936)


def test_the_greedy_tie_rule_accepts_a_near_tie_and_rejects_a_real_divergence():
    """The rule the CUDA comparisons use, on CPU: a row that parts from the greedy one by taking the
    runner-up token where the two are within 0.25 nats passes; one that takes a token far below the
    greedy one fails."""
    tok = vocab_tokenizer()
    model = qwen3_shaped(tok, seed=4)
    rows = TorchSampler(model, tok, max_new_tokens=8, temperature=0).generate(tiny_prompts(8))
    for row in rows:  # the first position whose runner-up is a near-tie
        ids = torch.tensor([row.prompt_ids + row.response_ids])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, len(row.prompt_ids) - 1:, :len(tok)]
            logp = torch.log_softmax(logits, -1)
        top2 = logp.topk(2).values
        near = (top2[:, 0] - top2[:, 1] < 0.25).nonzero()
        if len(near):
            d = int(near[0])
            break
    else:
        pytest.fail("no near-tie in 8 greedy rows of this model: take another seed")
    gaps = logp[d, row.response_ids[d]] - logp[d]

    def taking(token):
        return Rollout(0, row.prompt_ids, row.response_ids[:d] + [int(token)], "", "length")

    runner_up = taking(logp[d].topk(2).indices[1])
    assert greedy_rows_equal_up_to_ties(model, [row], [runner_up]) == 0  # passes
    with pytest.raises(AssertionError, match="without a near-tie"):
        greedy_rows_equal_up_to_ties(model, [row], [taking(gaps.argmax())])


def test_the_source_folder_is_the_same_for_the_same_model_in_every_process(tmp_path):
    """vLLM's compile cache is keyed on the model path among others: one folder per config +
    tokenizer, found again by a later process, another for another model; config and tokenizer only,
    no weights."""
    tok = vocab_tokenizer()
    a = source_folder(qwen3_shaped(tok, seed=0).config, tok, root=tmp_path)
    # other weights, same model
    b = source_folder(qwen3_shaped(tok, seed=1).config, tok, root=tmp_path)
    c = source_folder(qwen3_shaped(tok, tie=False).config, tok, root=tmp_path)
    assert a == b != c and Path(a).parent == tmp_path / "vllm"
    names = sorted(p.name for p in (tmp_path / "vllm").iterdir())
    assert names == sorted({Path(a).name, Path(c).name})
    assert (Path(a) / "config.json").exists() and not list(Path(a).glob("*.safetensors"))


def test_engine_starts_without_weight_files_and_follows_every_push(engine):
    """Greedy equality with TorchSampler before and after an update that changes every greedy row:
    only true if the push reached every layer (the engine started from random 'dummy' weights of
    another seed)."""
    sampler, tok = engine
    model = qwen3_shaped(tok, seed=1).to(DEVICE)
    source = Path(sampler.source_dir)
    # config + tokenizer only
    assert not list(source.glob("*.safetensors")) and not list(source.glob("*.bin"))
    assert json.loads((source / "config.json").read_text())["architectures"] == ["Qwen3ForCausalLM"]
    prompts = tiny_prompts(8)
    torch_s = TorchSampler(model, tok, max_new_tokens=24, temperature=0)
    sampler.load_weights(model)
    before = torch_s.generate(prompts)
    _assert_same_greedy(model, before, sampler.generate(prompts))
    with torch.no_grad():  # "an update": every tensor moves
        for p in model.parameters():
            p.add_(torch.randn_like(p) * p.std().clamp(min=0.02))
    torch_s.load_weights(model)
    sampler.load_weights(model)
    after = torch_s.generate(prompts)
    assert sum(a.response_ids != b.response_ids for a, b in zip(before, after)) == len(prompts)
    _assert_same_greedy(model, after, sampler.generate(prompts))


def test_the_engine_sleeps_after_generate_and_wakes_for_the_push(engine):
    """The same path on CPU and CUDA: asleep after each generate (on CPU vLLM's calls are skipped),
    a second generate with no push in between wakes it fully and samples the same greedy rows, a
    push wakes it."""
    sampler, tok = engine
    model = qwen3_shaped(tok, seed=5).to(DEVICE)
    sampler.load_weights(model)
    assert not sampler.asleep
    first = sampler.generate(tiny_prompts(4))
    assert sampler.asleep
    again = sampler.generate(tiny_prompts(4))
    assert [r.response_ids for r in again] == [r.response_ids for r in first]
    sampler.load_weights(model)
    assert not sampler.asleep


@needs_cuda
def test_sleep_gives_the_engine_memory_to_the_update_until_the_push(engine):
    """On CUDA the sleeping engine's KV cache (most of its 0.2 share) is free GPU memory until the
    push."""
    sampler, tok = engine
    model = qwen3_shaped(tok, seed=6).to(DEVICE)
    sampler.load_weights(model)
    awake = torch.cuda.mem_get_info()[0]
    sampler.generate(tiny_prompts(2))
    asleep = torch.cuda.mem_get_info()[0]
    sampler.load_weights(model)
    assert asleep - awake > GiB and abs(torch.cuda.mem_get_info()[0] - awake) < asleep - awake


def test_sampled_ids_stay_inside_the_tokenizer(engine):
    """The unused rows are made the most likely tokens; with the mask none is ever sampled at
    temperature 1. The model is tied like the engine, so the push carries the changed rows (an
    untied lm_head would be skipped)."""
    sampler, tok = engine
    model = qwen3_shaped(tok, seed=2).to(DEVICE)
    limit, rows = len(tok), tiny_prompts(8)
    prompts = [torch.tensor([tok.encode(p)], device=DEVICE) for p in rows]
    # the tied embedding is the output head: unused rows = 30 x the most liked known row
    with torch.no_grad():
        logits = torch.cat([model(input_ids=ids).logits[0] for ids in prompts])
        liked = logits.mean(0)[:limit].argmax()
        embedding = model.get_input_embeddings().weight
        embedding[limit:] = 30 * embedding[liked]
        top = torch.cat([model(input_ids=ids).logits[0].argmax(-1) for ids in prompts])
    # the control: unmasked, an unused id is the favourite
    assert top.ge(limit).float().mean() > 0.5
    sampler.load_weights(model)
    sampler.temperature = 1.0
    try:
        out = sampler.generate(rows, n=4)
    finally:
        sampler.temperature = 0
    ids = [t for r in out for t in r.response_ids]
    assert len(ids) > 100 and max(ids) < limit
    masks = sampler.sampling_mask
    # vLLM's V2 GPU runner refuses longer lists
    assert all(len(v) <= MAX_IDS for v in masks.values())


def test_no_logprobs_and_no_detokenising_unless_asked(engine, monkeypatch):
    """By default vLLM returns token ids only (the trainer decodes the text itself and needs no
    log-probs), and the engine holds no tokenizer (loading and copying Qwen3's cost seconds per
    engine start)."""
    sampler, tok = engine
    assert sampler.llm.llm_engine.tokenizer is None
    seen = []
    generate = sampler.llm.generate
    monkeypatch.setattr(sampler.llm, "generate",
                        lambda *a, **k: seen.append(generate(*a, **k)) or seen[-1])
    rows = sampler.generate(tiny_prompts(2))
    outputs = [c for out in seen[0] for c in out.outputs]
    # vLLM neither decoded nor scored
    assert all(c.text == "" and c.logprobs is None for c in outputs)
    assert all(r.logprobs == [] and r.text == tok.decode(r.response_ids, skip_special_tokens=True)
               for r in rows)


def test_logprobs_equal_the_teacher_forced_ones(engine):
    """When asked for: vLLM's raw log-probs of its own samples vs entropy.py's teacher-forced
    log-probs at temperature 1."""
    sampler, tok = engine
    model = qwen3_shaped(tok, seed=3).to(DEVICE)
    sampler.load_weights(model)
    sampler.temperature, sampler.logprobs = 1.0, True
    try:
        out = sampler.generate(tiny_prompts(4), n=2)
    finally:
        sampler.temperature, sampler.logprobs = 0, False
    batch = collate_rollouts([r.prompt_ids for r in out], [r.response_ids for r in out],
                             tok.pad_token_id)
    with torch.no_grad():
        logp, _ = token_logprobs_and_entropy(model, batch["input_ids"].to(DEVICE),
                                             batch["attention_mask"].to(DEVICE),
                                             labels=batch["labels"].to(DEVICE))
    mask = batch["response_mask"].bool()
    ours = torch.tensor([lp for r in out for lp in r.logprobs])
    # float32 kernels vs float32; bf16 engine vs float32 trainer
    tol = 1e-3 if DEVICE == "cpu" else 0.1
    assert ours.shape == logp.cpu()[mask].shape
    assert (ours - logp.cpu()[mask]).abs().max() < tol


def test_the_engine_leaves_the_process_environment_and_threads_as_they_were(engine):
    """vLLM's start-up exports LD_PRELOAD, LOCAL_WORLD_SIZE, ... and sets torch to one thread; later
    subprocesses of the trainer (and the trainer itself) must not inherit that. The module's engine
    has started by now."""
    import os

    assert "LD_PRELOAD" not in os.environ and "LOCAL_WORLD_SIZE" not in os.environ
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, before - 1) if before > 1 else 2)
    # set_num_threads works again (vLLM's worker makes it a no-op)
    assert torch.get_num_threads() != before
    torch.set_num_threads(before)


# ------------------------------------------------------------ tests that start engines of their own
def _memory_in_use():
    """Bytes this process holds: GPU memory in use on CUDA, the resident set on CPU."""
    if DEVICE == "cuda":
        free, total = torch.cuda.mem_get_info()
        return total - free
    status = Path("/proc/self/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmRSS"))
    return int(line.split()[1]) * 1024


def test_engines_started_and_closed_in_one_process_give_their_memory_back(capsys):
    """Three engines one after the other (the second untied: its pushed lm_head is followed, greedy
    rows equal TorchSampler's): close() frees each engine's KV cache (1 GiB on CPU, most of the 0.2
    share on CUDA), the engine core's model object is gone, and memory does not grow by an engine
    per engine. The sleep skip is said once per engine on CPU. Models of the same config share one
    source folder and vLLM config hash (the compile cache)."""
    from nano_forkrl.engines.vllm_sampler import VLLMSampler

    tok, prompts, closed, hashes = vocab_tokenizer(), tiny_prompts(4), [], []
    for i, tie in enumerate((True, False, True)):
        model = qwen3_shaped(tok, seed=10 + i, tie=tie).to(DEVICE)
        sampler = VLLMSampler(model, tok, max_new_tokens=12, temperature=0,
                              gpu_memory_utilization=0.2, enforce_eager=True)
        try:
            hashes.append(sampler.llm.llm_engine.vllm_config.compute_hash())
            running = _memory_in_use()  # awake: weights and KV cache
            worker = sampler.llm.llm_engine.model_executor.driver_worker.worker
            vllm_model = weakref.ref(worker.model_runner.model)
            if not tie:  # an update of the output head alone reaches the untied engine
                with torch.no_grad():
                    model.lm_head.weight.mul_(-3)
                sampler.load_weights(model)
            expected = TorchSampler(model, tok, max_new_tokens=12, temperature=0).generate(prompts)
            _assert_same_greedy(model, expected, sampler.generate(prompts))
            sampler.generate(prompts)
        finally:
            sampler.close()
        closed.append(_memory_in_use())
        assert vllm_model() is None, "the engine core still holds its model after close()"
        assert running - closed[-1] > GiB / 2, (running, closed[-1])
        if DEVICE == "cpu":
            assert capsys.readouterr().err.count("no sleep mode on CPU") == 1
    sampler.close()  # a second close does nothing
    with pytest.raises(RuntimeError, match="closed"):
        sampler.generate(prompts)
    assert closed[-1] - closed[0] < 2 * GiB, closed  # one engine's footprint on CPU is about 2 GiB
    assert hashes[0] == hashes[2] != hashes[1]


# ---------------------------------------------------------------- the loop with --sampler vllm
LOOP = ["--sampler", "vllm", "--template", "plain", "--prompts-per-step", "4", "--group-size", "4",
        "--mini-batch-prompts", "2", "--max-new-tokens", "12", "--no-dynamic-sampling",
        "--eval-every", "0", "--eval-n", "4", "--eval-k", "1", "--save-every", "1", "--lr", "1e-3",
        "--weight-decay", "0.1"]


def _weights(path):
    from transformers import AutoModelForCausalLM
    return AutoModelForCausalLM.from_pretrained(path).state_dict()


def _loop_model(folder, initializer_range=0.02):
    """`folder` for --model random:DIR (config.json + tokenizer, no weights): head_dim 64 as vLLM's
    CPU attention needs, with the tiny task's tokenizer (270 ids) and a 320-row embedding. What the
    loop tests check does not depend on the vocabulary, and the log-probs and update of a
    151,936-row head took most of their time."""
    from nano_forkrl.tasks.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer()
    config = qwen3_shaped(tok, vocab_size=320).config
    config.initializer_range = initializer_range
    config.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_training_steps_with_vllm_rollouts_resume_exactly(tmp_path, monkeypatch):
    """A two-step run and a "killed" one resumed to the same second step: the same weights, bit for
    bit, and the same samples at step 2 (the vLLM seed stream is restored). The killed run is the
    folder the uninterrupted run leaves right after its step-1 save, copied aside (all a kill there
    would leave): two engine starts instead of three. A random model earns no reward, so the weights
    move by AdamW's decoupled weight decay; every step still samples with vLLM, scores, updates and
    pushes the new weights."""
    from nano_forkrl.run.setup.config import parse_args
    from nano_forkrl.train import train

    # logits of std ~1 instead of ~0.2: entropies differ from token to token
    folder = _loop_model(tmp_path / "qwen3-shaped", initializer_range=0.1)
    args = LOOP + ["--model", f"random:{folder}", "--device", DEVICE, "--steps", "2"]
    with copied_at_save(monkeypatch, 1, tmp_path / "b"):
        full = train(parse_args(args + ["--out-dir", str(tmp_path / "a")]))
    # the copy: the evaluation at step 0 and step 1
    assert [r["step"] for r in read_log(tmp_path / "b" / "metrics.jsonl")] == [0, 1]
    resumed = train(parse_args(args + ["--out-dir", str(tmp_path / "b"), "--resume"]))
    steps = [r for r in full if "eval" not in r]
    assert [r["step"] for r in steps] == [1, 2] and all(r["time"]["sync"] > 0 for r in steps)
    assert [r["step"] for r in resumed if "eval" not in r] == [2]
    same = ("response_length", "entropy_mean", "entropy_p80")  # functions of the sampled tokens
    resumed_step = [r for r in resumed if "eval" not in r][0]
    assert [steps[-1][k] for k in same] == [resumed_step[k] for k in same]
    assert steps[0]["entropy_mean"] != steps[1]["entropy_mean"]  # a new seed per call: new samples
    a, b = _weights(tmp_path / "a" / "checkpoint"), _weights(tmp_path / "b" / "checkpoint")
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.skipif(torch.cuda.device_count() == 1,
                    reason="two ranks need two GPUs (or none: vLLM's CPU build)")
def test_two_torchrun_ranks_train_with_an_engine_each(tmp_path):
    """torchrun --nproc_per_node 2 --sampler vllm: every rank starts its own engine with vLLM's
    external_launcher backend inside the trainer's process group (on GPUs: on cuda:LOCAL_RANK,
    checked at start-up), and two steps of sampling, update and push run on both; at the end each
    rank closes its engine and exits cleanly."""
    folder = _loop_model(tmp_path / "qwen3-shaped")
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "-m", "nano_forkrl.train", *LOOP, "--model", f"random:{folder}", "--device", "auto",
               "--steps", "2", "--save-every", "0", "--no-final-save", "--out-dir", str(out)]
    run = subprocess.run(command, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True,
                         text=True, timeout=1200, cwd=Path(__file__).resolve().parents[2])
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    # also at exit: vLLM's shutdown took the group down before atexit
    assert "Traceback" not in run.stderr
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in steps if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2] and all(r["time"]["sync"] > 0 for r in steps)
    assert not (out / "checkpoint").exists()  # --no-final-save
