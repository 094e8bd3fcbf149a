"""nano_forkrl: RL with verifiable rewards for math reasoning, training only on forking tokens.

The idea (Wang et al. 2025, "Beyond the 80/20 Rule", arXiv 2506.01939): in a chain of thought most tokens
are near-deterministic; a minority of high-entropy "forking tokens" decide where the reasoning goes.
Restricting the DAPO policy-gradient update to the top rho = 20% highest-entropy response tokens trains as
well as or better than updating on all tokens.

The six concepts, in the order a training step uses them (one file each, at the top of the package):
    sampling    G responses per prompt: the sampling rule and the contract every engine keeps
    verify      is the final answer right? -> the reward
    advantage   group-normalised advantages, DAPO's dynamic-sampling filter and overlong shaping
    entropy     per-token log-probs and entropies, chunked over tokens (no float32 [B, T, V])
    masking     masked reductions and the top-rho forking-token mask (TokenSelection: its one owner)
    loss        DAPO's clipped surrogate per token and its aggregation
    update      the micro-batched, clipped optimizer step on the masked tokens
and train (the loop that wires them), bench (speed and memory), cs336 (the CS336 assignment's names).

One level down, by layer:
    engines/    the sampling engines: torch_sampler (+ fastdecode, its CUDA path), vllm_sampler, factory
    verifier/   the verifier's helpers: extract (which part is the answer), latex, symbolic, relations, prose, ...
    run/        run infrastructure: config, validate, data, sources, tiny (the CPU default), rollouts, policy,
                device, seeds, checkpoint, metrics, guard, bounds, rundir, errors
    tools/      evaluate (avg@k / pass@k), analysis (the paper's observations), flops, benchmarks, assignment
"""

__version__ = "0.1.0"
