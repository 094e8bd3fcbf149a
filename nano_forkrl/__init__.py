"""nano_forkrl: RL with verifiable rewards for math reasoning, training only on forking tokens.

The idea (Wang et al. 2025, "Beyond the 80/20 Rule", arXiv 2506.01939): in a chain of thought most tokens
are near-deterministic; a minority of high-entropy "forking tokens" decide where the reasoning goes.
Restricting the DAPO policy-gradient update to the top rho = 20% highest-entropy response tokens trains as
well as or better than updating on all tokens.

One concept per module, read in this order:
    data        problems in, token batches out
    sampling    rollouts (TorchSampler on CPU/GPU; fastdecode = its CUDA path; vllm_sampler on GPU)
    extract     which part of a response is the final answer
    verify      is the answer right? -> reward (latex: LaTeX to canonical form; symbolic: to sympy)
    advantage   group-normalised advantages, DAPO dynamic sampling and overlong shaping
    rollouts    the prompt stream and dynamic sampling for one step
    entropy     per-token log-probs and entropy, chunked over tokens
    masking     masked means and the top-rho forking-token mask
    loss        per-token surrogate losses and their aggregation
    update      the clipped policy-gradient step
    train       the loop that wires them (config: knobs and presets; checkpoint: resume; policy: loading)
    evaluate, analysis, tiny, bench, flops: evaluation, the paper's observations, the CPU default, speed
"""

__version__ = "0.1.0"
