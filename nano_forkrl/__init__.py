"""nano_forkrl: RL with verifiable rewards for math reasoning, training only on forking tokens.

The idea (Wang et al. 2025, "Beyond the 80/20 Rule", arXiv 2506.01939): in a chain of thought most
tokens are near-deterministic; a minority of high-entropy "forking tokens" decide where the
reasoning goes. Restricting the DAPO policy-gradient update to the top rho = 20% highest-entropy
response tokens trains as well as or better than updating on all tokens.

The six concepts, in the order a training step uses them (a file each at the top of the package;
the update is two files, loss.py being its per-token half):
    sampling    G responses per prompt: the sampling rule and the contract every engine keeps
    verify      is the final answer right? -> the reward
    advantage   group-normalised advantages, DAPO's dynamic-sampling filter and overlong shaping
    entropy     per-token log-probs and entropies, chunked over tokens (no float32 [B, T, V])
    masking     masked reductions and the top-rho forking-token mask (TokenSelection: its one owner)
    update      the micro-batched, clipped optimizer step on the masked tokens; its per-token half,
      loss      DAPO's clipped surrogate per token and its aggregation
and train (the loop that wires them) and cs336 (the CS336 assignment's names).

Beneath them, one folder per layer. Floor n imports only its own folder and lower floors (the
top-level files of a floor are one folder); nothing imports train.py (tools run it as a process).
    utils/          1  errors (one-line user errors), seeds, device (dtype casts)
    verifier/       1  the verifier's helpers: extract (where the answer is), latex, symbolic, ...
    engines/        2  the sampling engines: torch_sampler (+ cpudecode, fastdecode), vllm_sampler
    tasks/          2  problems: data, prompts, sources, arithmetic + tiny (the CPU default), chain,
                       rollout_batch (what one step learns from)
    run/setup/      3  config, validate, policy (model, device, dtype), bounds, the memory plan
    run/steps/      3  the loop's steps: rollouts (prompts, dynamic sampling), batch (score, cut),
                       evaluation
    run/persist/    3  checkpoint, state (the trainer state read back), rundir, resume, metrics
    run/safety/     3  guard (a step that breaks the weights is undone), stop (SIGTERM saves first)
    run/place/      3  one process or torchrun: single, distributed, sharding (FSDP2)
    assignment/     3  the homework: a student copy with the solutions blanked, graded per part
    tools/          4  user commands: evaluate (avg@k, pass@k), memory (the presets), shrink_config
    bench/          4  speed and memory benchmarks (`python -m nano_forkrl.bench`)
    study/          4  the experiment: protocol, analysis (the paper's observations), rl_change, ...
The top-level files: the other concepts on floor 1, verify and update on 2, train and cs336 on 4.
tests/test_package.py holds the floors as data and checks every import against them.
"""

__version__ = "0.1.0"
