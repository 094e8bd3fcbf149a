"""Tests for nano_forkrl/run/place/distributed.py: two CPU processes (gloo) against one, on the same
batch; the tiny preset under torchrun; a killed torchrun run resumed.

The equality test runs train_step itself in both set-ups, with a deterministic fake engine (its
responses depend only on the prompt, not on the rank that samples it): the two runs train on the
same global batch."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as tdist
import torch.multiprocessing as mp
from conftest import make_tiny_qwen3

from nano_forkrl.masking import TokenSelection
from nano_forkrl.run.setup.config import Config
from nano_forkrl.tasks.data import format_prompt
from nano_forkrl.run.place.distributed import Ranks
from nano_forkrl.run.place.single import OneProcess
from nano_forkrl.tasks.rollout_batch import collate
from nano_forkrl.run.persist.metrics import read_log
from nano_forkrl.utils.seeds import generator
from nano_forkrl.run.place.sharding import full
from nano_forkrl.sampling import Rollout
from nano_forkrl.train import train_step

PROBLEMS = [{"problem": f"{a} + {a + 3}", "answer": str(2 * a + 3)} for a in range(40)]
SETTINGS = {  # name: (Config overrides, gradient checkpointing)
    "rollout mask, token-mean": (dict(micro_batch_size=2), False),
    "rollout mask, seq-mean, checkpointed layers": (
        dict(micro_batch_size=3, loss_agg="seq-mean-token-mean"), True),
    "current mask (rank = one micro-batch)": (
        dict(micro_batch_size=4, mask_source="current"), False),
}


class FakeEngine:
    """Responses that depend only on (prompt, sample index); about half of them correct."""
    pad_id = 0

    def __init__(self):
        self.answers = {format_prompt(p["problem"], "plain"): p["answer"] for p in PROBLEMS}
        self.pushed = None

    def generate(self, prompts, n=1):
        out = []
        for i, prompt in enumerate(prompts):
            for j in range(n):
                g = generator("fake", prompt, j)
                length = int(torch.randint(3, 12, (1,), generator=g))
                ids = torch.randint(2, 64, (length,), generator=g).tolist()
                right = bool(torch.rand(1, generator=g) < 0.5)
                text = f"\\boxed{{{self.answers[prompt] if right else 'x'}}}"
                out.append(Rollout(i, [5, 6, 7 + len(prompt) % 9], ids, text, "eos"))
        return out

    def load_weights(self, model):
        self.pushed = [p.detach().clone() for p in model.parameters()]


class Recorder:
    """SGD that records each step's full gradient."""

    def __init__(self, model):
        self.model, self.sgd, self.grads = model, torch.optim.SGD(model.parameters(), lr=0.5), []

    def zero_grad(self):
        self.sgd.zero_grad()

    def step(self):
        self.grads.append({n: full(p.grad).clone() for n, p in self.model.named_parameters()})
        self.sgd.step()


def _config(overrides):
    return Config(prompts_per_step=4, group_size=4, mini_batch_prompts=2, max_new_tokens=16,
                  **overrides)


def _fixed_batch():
    prompts = [format_prompt(p["problem"], "plain") for p in PROBLEMS[:4]]
    rollouts = FakeEngine().generate(prompts, n=4)
    return collate(rollouts, None, torch.zeros(len(rollouts)), 0)


def _run(place):
    """Per setting: (stats, gradients, pushed weights) of one train_step; and the masks of a fixed
    batch."""
    from nano_forkrl.run.setup.policy import enable_grad_checkpointing

    results = {}
    for name, (overrides, checkpointed) in SETTINGS.items():
        model = make_tiny_qwen3().train()
        if checkpointed:
            enable_grad_checkpointing(model)
        model = place.policy(model, "torch")[0]
        engine, recorder = FakeEngine(), Recorder(model)
        _, stats = train_step(_config(overrides), model, recorder, engine, None, PROBLEMS, 0, place)
        # pushed: the updated weights, gathered
        results[name] = (stats, recorder.grads, engine.pushed)
    model = place.policy(make_tiny_qwen3().train(), "torch")[0]
    batch = _fixed_batch()
    _, entropy = place.score_batch(model, batch)
    masks = {mode: TokenSelection(mode=mode).for_batch(entropy, batch.response_mask, generator("m"))
             for mode in ("top", "random")}
    return results, entropy, masks


def _worker(rank, world, folder):
    torch.set_num_threads(1)
    tdist.init_process_group("gloo", init_method=f"file://{folder}/store", rank=rank,
                             world_size=world)
    out = _run(Ranks())
    if rank == 0:
        torch.save(out, Path(folder) / "two.pt")
    tdist.destroy_process_group()


def test_two_processes_give_the_one_process_mask_loss_and_gradient(tmp_path):
    torch.set_num_threads(1)
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2)
    two, two_entropy, two_masks = torch.load(tmp_path / "two.pt", weights_only=False)
    one, one_entropy, one_masks = _run(OneProcess())
    assert torch.allclose(one_entropy, two_entropy, atol=1e-6)
    for mode in one_masks:  # the exact top-rho (or random rho) of the global batch
        assert torch.equal(one_masks[mode], two_masks[mode]), mode
    for name in SETTINGS:
        (s1, g1, w1), (s2, g2, w2) = one[name], two[name]
        assert s1["groups_kept"] == s2["groups_kept"], name
        assert s1["tokens_trained"] == s2["tokens_trained"], name
        for key in ("loss", "grad_norm", "clip_frac_low", "approx_kl", "entropy_trained"):
            assert s1[key] == pytest.approx(s2[key], rel=1e-5, abs=1e-7), (name, key)
        assert len(g1) == len(g2) == 2  # two mini-batches
        diff = max((a[n] - b[n]).abs().max().item() for a, b in zip(g1, g2) for n in a)
        scale = max(a[n].abs().max().item() for a in g1 for n in a)
        assert diff <= 1e-5 * scale, (name, diff, scale)
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(w1, w2)), name


FAST = ["--eval-n", "8", "--eval-k", "2", "--prompts-per-step", "8", "--mini-batch-prompts", "4",
        "--group-size", "4", "--max-new-tokens", "40", "--eval-every", "0", "--save-every", "1"]


def _torchrun(out, *flags, **kwargs):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
               "-m", "nano_forkrl.train", *FAST, "--out-dir", str(out), *flags]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=Path(__file__).resolve().parents[3],
                            start_new_session=True, **kwargs)


def _steps(out):
    records = read_log(out / "metrics.jsonl")
    # every step (one without an informative group has no loss)
    return {r["step"]: (r.get("loss"), r["accuracy"], r.get("tokens_trained"))
            for r in records if "accuracy" in r}


def _children(pid):
    """The process ids below `pid` (torchrun starts each rank in a session of its own)."""
    found = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    return [p for child in found for p in (child, *_children(child))]


def _weights(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


def test_torchrun_trains_the_tiny_preset_and_resumes_a_killed_run_exactly(tmp_path):
    """Two steps under torchrun, frozen (SIGSTOP: both ranks and torchrun) once the step-1
    checkpoint is complete: a copy of the run folder then is what a SIGKILL there leaves. The copy
    is resumed and the same run, let go on, is the uninterrupted one: the same logged steps and the
    same weights. Two launches instead of three (each starts three Python processes)."""
    import shutil

    from nano_forkrl.run.persist.checkpoint import checkpoint_step

    full_run, killed = tmp_path / "full", tmp_path / "killed"
    steps = ("--steps", "2", "--seed", "1")  # seed 1: both steps have informative groups (updates)
    first = _torchrun(full_run, *steps)
    deadline = time.time() + 300
    while checkpoint_step(full_run / "checkpoint") is None and time.time() < deadline:
        assert first.poll() is None, first.communicate()[0]
        time.sleep(0.05)
    frozen = [*_children(first.pid), first.pid]
    for pid in frozen:
        os.kill(pid, signal.SIGSTOP)
    try:
        shutil.copytree(full_run, killed)  # the files a kill at this moment would leave
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    output = first.communicate(timeout=300)[0]
    assert first.returncode == 0, output
    # rank 0 alone prints
    assert output.count("config: ") == 1 and output.count("[eval step 2]") == 1
    assert sorted(_steps(full_run)) == [1, 2]
    assert all(loss is not None for loss, _, _ in _steps(full_run).values())  # every step updates
    state = torch.load(full_run / "checkpoint" / "trainer_state.pt", weights_only=False)
    # one HF folder, both ranks' RNG states
    assert state["step"] == 2 and len(state["sampler_rng"]) == 2

    saved = torch.load(killed / "checkpoint" / "trainer_state.pt", weights_only=False)["step"]
    assert saved < 2, "the run finished before it was frozen"
    resumed = _torchrun(killed, *steps, "--resume")
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
    assert f"resumed from {killed / 'checkpoint'} at step {saved}" in output
    assert _steps(killed) == _steps(full_run)  # the same data order, samples and updates
    a, b = _weights(full_run / "checkpoint"), _weights(killed / "checkpoint")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
