"""Tests for nano_forkrl/bench/loop_bench.py: seconds per RL step and per evaluation of a preset's
loop (shrunk here by train flags on top of the tiny preset)."""
import ast
from pathlib import Path

import nano_forkrl.bench
from nano_forkrl.run.setup.policy import pick_device
from nano_forkrl.bench.loop_bench import bench_eval, bench_rl_steps

SMALL = ["--prompts-per-step", "4", "--group-size", "2", "--mini-batch-prompts", "2",
         "--max-new-tokens", "8", "--eval-n", "6", "--eval-k", "2"]


def test_rl_steps_report_the_median_step_and_its_phases():
    rec = bench_rl_steps("tiny", 3, pick_device("cpu"), SMALL)
    assert "error" not in rec, rec
    assert len(rec["all_s"]) == 3 and sorted(rec["all_s"])[1] == round(rec["seconds"], 4)
    assert {"rollout", "logprobs", "update", "sync"} <= set(rec["phase_s"]) or \
        set(rec["phase_s"]) == {"rollout"}  # a step whose groups were all equal has no update
    assert 0 < rec["phase_s"]["rollout"] <= max(rec["all_s"]) and rec["cpu_s"] > 0
    assert rec["flags"] == SMALL and rec["peak_mem_gb"] > 0 and rec["child_peak_mem_gb"] > 0
    assert rec["child_wall_s"] > sum(rec["all_s"])  # the steps ran in the child, with its start-up


def test_no_bench_module_imports_the_loop():
    """The loop is run as a command (python -m nano_forkrl.train), never imported: train.py is
    the top of the import graph."""
    for path in Path(nano_forkrl.bench.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [f"{node.module}.{a.name}" for a in node.names] + [node.module or ""]
            assert not any(n == "nano_forkrl.train" or n.startswith("nano_forkrl.train.")
                           for n in names), f"{path.name} imports nano_forkrl.train"


def test_evaluation_times_eval_n_times_eval_k_samples_and_keeps_the_score():
    from nano_forkrl.engines.factory import make_sampler
    from nano_forkrl.tasks.data import load_split
    from nano_forkrl.run.setup.policy import load_policy
    from nano_forkrl.run.steps.evaluation import evaluate

    rec = bench_eval("tiny", 2, pick_device("cpu"), SMALL)
    assert "error" not in rec, rec
    assert rec["samples"] == 6 * 2 and len(rec["all_s"]) == 2 and rec["tok_per_s"] > 0
    assert rec["cpu_s"] > 0
    model, tok = load_policy("tiny", "cpu")
    sampler = make_sampler("torch", model, tok, max_new_tokens=8, top_p=1.0, seed=0,
                           temperature=1.0)
    # the set the loop evaluates while training: validation (test is the protocol's final report)
    direct = evaluate(sampler, load_split("tiny", "validation", limit=6), k=2, tokenizer=tok)
    assert rec["avg@k"] == direct["avg@2"]  # the loop's evaluation (fixed evaluation seed)
