"""The paper's Sec. 3 temperature experiment: decode the high-entropy tokens at one temperature and
the others at another.

Wang et al. 2025 report that lowering the temperature of the tokens above the entropy threshold
(t_high) hurts, raising it moderately helps, and changing the temperature of the others (t_low)
matters much less. `BucketTemperatureSampler` samples each token at t_high where the temperature-1
entropy of its distribution exceeds the threshold, else at t_low; `bucket_temperature_sweep` scores
avg@k for each (t_high, t_low) with the same noise (study/analysis.py's `--sweep` runs it at the
80th-percentile entropy).
"""
import torch

from nano_forkrl.engines.torch_sampler import TorchSampler
from nano_forkrl.entropy import token_entropy
from nano_forkrl.sampling import drop_unused, sample_next

DEFAULT_PAIRS = ((1.0, 1.0), (0.0, 1.0), (0.5, 1.0), (1.5, 1.0), (1.0, 0.5), (1.0, 1.5))  # (high, low)


class BucketTemperatureSampler(TorchSampler):
    """Samples a token at t_high where the temperature-1 entropy exceeds `threshold` (nats), else at
    t_low. A temperature of 0 means greedy; its log-prob is then at T = 1 (as in `sample_next`);
    otherwise the returned log-prob is under the temperature actually used. t_high == t_low == T
    draws exactly the tokens a TorchSampler at T draws (same arithmetic, same random numbers)."""

    def __init__(self, model, tokenizer, *, threshold, t_high=1.0, t_low=1.0, **kwargs):
        super().__init__(model, tokenizer, **kwargs)
        self.threshold, self.t_high, self.t_low = threshold, t_high, t_low

    def pick(self, logits):
        z = logits.float()
        drop_unused(z, self.vocab_limit)  # sampling.py's rule: ids the tokenizer cannot decode
        # the slice: 0 * -inf at the dropped ids would give NaN
        hot = token_entropy(z[:, :self.vocab_limit]) > self.threshold
        if self.t_high == 0 and self.t_low == 0:
            return sample_next(z, 0.0)
        scaled = torch.where(hot[:, None], z / (self.t_high or 1.0), z / (self.t_low or 1.0))
        tok, lp = sample_next(scaled, 1.0, self.top_p, self.generator)
        if 0 in (self.t_high, self.t_low):  # one bucket is greedy: override its rows (no host sync)
            greedy = hot if self.t_high == 0 else ~hot
            g_tok, g_lp = sample_next(z, 0.0)
            tok, lp = torch.where(greedy, g_tok, tok), torch.where(greedy, g_lp, lp)
        return tok, lp


def bucket_temperature_sweep(model, tokenizer, problems, *, threshold, pairs=DEFAULT_PAIRS, k=1,
                             template="plain", max_new_tokens=256, seed=1234):
    """avg@k for each (t_high, t_low) of `pairs`; every pair sees the same noise."""
    from nano_forkrl.run.steps.evaluation import evaluate

    sampler = BucketTemperatureSampler(model, tokenizer, threshold=threshold,
                                       max_new_tokens=max_new_tokens, seed=seed)
    rows = []
    for t_high, t_low in pairs:
        sampler.t_high, sampler.t_low = t_high, t_low
        res = evaluate(sampler, problems, k=k, template=template, tokenizer=tokenizer, seed=seed)
        rows.append(dict(t_high=t_high, t_low=t_low, accuracy=res[f"avg@{k}"],
                         mean_length=res["mean_length"]))
    return rows
