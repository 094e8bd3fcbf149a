"""The hidden graded cases: only the autograder holds this file (and hidden_nn.py, the tensor
parts) and the outputs the solution gives here.

The student copy leaves it out (assignment.py's build). Each case checks behaviour the docstrings
and the tutorials state; random outputs (sampling) are judged by property checks that run
in the grading parent.
"""
import math

import torch

from nano_forkrl.assignment.cases import case
from nano_forkrl.assignment.public import SLOW, randn

SAMPLE_ROWS = 4000


def _sampling_logits():
    return torch.tensor([[2.0, 1.0, 0.5, -1.0, 0.0]])


def _check_samples(temperature, top_p, tol):
    """A parent-side check: tokens inside the nucleus, frequencies near the renormalised nucleus,
    and each log-prob the policy's (before the cut)."""
    def check(outputs):
        tokens, logprobs = outputs
        logp = torch.log_softmax(_sampling_logits()[0].double() / temperature, dim=-1)
        p, order = logp.exp().sort(descending=True)
        keep = order[(p.cumsum(0) - p) < top_p]
        nucleus = torch.zeros_like(logp).index_fill(0, keep, 1.0) * logp.exp()
        assert tokens.shape == (SAMPLE_ROWS,) and not tokens.is_floating_point(), \
            f"tokens: {tokens.shape}"
        assert set(tokens.tolist()) <= set(keep.tolist()), \
            f"tokens outside the nucleus {sorted(keep.tolist())}"
        freq = torch.bincount(tokens, minlength=5).double() / SAMPLE_ROWS
        assert (freq - nucleus / nucleus.sum()).abs().max() < tol, f"frequencies {freq.tolist()}"
        torch.testing.assert_close(logprobs.double(), logp[tokens], rtol=1e-5, atol=1e-5)
    return check


def _sample(temperature, top_p):
    from nano_forkrl.sampling import sample_next

    g = torch.Generator().manual_seed(1)
    return sample_next(_sampling_logits().expand(SAMPLE_ROWS, 5), temperature, top_p, generator=g)


@case("sampling", check=_check_samples(1.3, 1.0, 0.03))
def samples_follow_softmax_with_temperature():
    return _sample(1.3, 1.0)


@case("sampling", check=_check_samples(1.0, 0.8, 0.03))
def top_p_keeps_only_the_nucleus():
    return _sample(1.0, 0.8)


@case("sampling")
def greedy_on_a_batch_of_random_logits():
    from nano_forkrl.sampling import sample_next

    return sample_next(randn(6, 11, seed=3) * 4, temperature=0)


@case("extract")
def boxes_markers_and_tags():
    from nano_forkrl.verifier.extract import extract_answer

    return [extract_answer(s) for s in (
        r"\boxed{\frac{\sqrt{3}}{\left(2\right)}}", r"$\boxed 8$",
        "so she pays 3 + 4 = 7 dollars\n#### 2,000", "The answer is 4.5 cm. Done.",
        "**Final Answer:** 41", "The answer is 4. Later: the answer is 9.",
        r"The answer is 4, i.e. \boxed{6}. Answer: 7",
        r"<think>maybe \boxed{3}</think> The answer is 8", r"<think>still \boxed{3}",
        r"The roots are \boxed{-2} and \boxed{5}.", r"$x = \boxed{-3}$ and $y = \boxed{4}$",
        r"\boxed{1} and then \boxed{2}",
        r"so \boxed{200}. Final Answer: The final answer is $10,455$.", 17)]


@case("extract")
def long_list_of_boxes_is_joined():
    from nano_forkrl.verifier.extract import extract_answer

    return extract_answer(", ".join(rf"\boxed{{{i}}}" for i in range(300)))


@case("verify")
def equivalent_forms():
    from nano_forkrl.verify import is_equivalent

    pairs = [("3e6", "3000000"), ("23/7", "3 2/7"), (r"\cfrac{5}{8}", "0.625"),
             (r"\((4, -9)\)", "(4,-9)"), (r"48\textnormal{ feet}", "48"), ("t=3, t=-8", "-8, 3"),
             (r"\pm 17", "{-17, 17}"), ("x > 5", r"(5, \infty)"), ("AB=4,CD=5", "4, 5"),
             ("-34x-45y+20z-100=0", "34x+45y-20z+100=0"), ("0.1", r"\frac{1}{10}"),
             (r"\pi\cdot10^{7}", r"10^{7}\pi"), ("x^2+2x+1", "(x+1)^2"),
             (r"\sqrt{8}", r"2\sqrt{2}")]
    return [[is_equivalent(a, b, timeout=SLOW), is_equivalent(b, a, timeout=SLOW)]
            for a, b in pairs]


@case("verify")
def traps_that_are_not_equal():
    from nano_forkrl.verify import is_equivalent

    pairs = [("1,2", "1,2,3"), ("(0,1]", "[0,1)"), ("12", "1.2"), ("", ""), ("0.333", r"\frac13"),
             ("10\\%", "0.1"), ("(1,2)", "(2,1)"),
             ("123456789012345678901234567890", "123456789012345678901234567891"), ("3.14", r"\pi"),
             (r"\frac{1}{0}", r"\frac{1}{0}"), ("1234567", "1234567.5"), ("0^0", "1"),
             ("3 2/7", "32/7"), ("y > 3", "y >= 3"), (3, 3), (None, "1")]
    return [[is_equivalent(a, b, timeout=SLOW), is_equivalent(b, a, timeout=SLOW)]
            for a, b in pairs]


@case("verify")
def rewards_with_values():
    from nano_forkrl.verify import reward

    return [reward(r"</think> so \boxed{\frac{1}{2}}", "0.5", correct=1.0, wrong=-1.0,
                   timeout=SLOW),
            reward(r"<think>\boxed{2}", "2", wrong=-1.0, timeout=SLOW),
            reward("The answer is 12.", "12", timeout=SLOW)]


@case("advantage")
def grpo_matches_the_formula_on_random_rewards():
    from nano_forkrl.advantage import group_advantages

    r = torch.randint(0, 2, (24,), generator=torch.Generator().manual_seed(5)).float()
    return [group_advantages(r, 4), group_advantages(r.long(), 6, normalize_std=False),
            group_advantages(r * 2 - 1, 4, eps=0.5), group_advantages([1.0, 1.0, 1.0], 3)]


@case("advantage")
def overlong_ramp_shape_and_factor():
    from nano_forkrl.advantage import dynamic_sampling_keep, overlong_penalty

    lengths = torch.tensor([[0, 7, 8, 9], [10, 11, 12, 40]])
    return [overlong_penalty(lengths, 10, 3, factor=0.5), overlong_penalty([5, 9, 10, 11], 10, 10),
            dynamic_sampling_keep([0.0, 0.0, 0.5, 0.5, 0.5, 1.0], 3)]
