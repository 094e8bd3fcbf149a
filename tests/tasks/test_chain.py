import random
from itertools import islice

import pytest

from nano_forkrl.tasks import chain
from nano_forkrl.tasks.arithmetic import split_of
from nano_forkrl.verify import reward


def problems(n, seed=0):
    rng = random.Random(seed)
    return [chain.make_problem(rng) for _ in range(n)]


def test_every_solution_in_any_valid_order_is_correct_and_checked_by_the_reward():
    for p in problems(200):
        first, terms = chain.parse_problem(p["problem"])
        assert 3 <= len(terms) <= 4 and 0 <= first <= 99
        for seed in range(3):
            text = chain.solution(p["problem"], random.Random(seed))
            assert chain.first_mistake(p["problem"], text) is None
            assert reward(text, p["answer"]) == 1.0
            lines = text.split("\n")
            values = [int(line.split("=")[1]) for line in lines if line.startswith("take")]
            assert all(0 <= v <= 99 for v in values) and str(values[-1]) == p["answer"]


def test_the_free_orders_differ_only_in_the_decisions():
    p = {"problem": "Chain 17-4-13+58-42."}
    texts = {chain.solution(p["problem"], random.Random(s)) for s in range(40)}
    assert len(texts) > 1  # more than one valid order is demonstrated
    assert chain.solution(p["problem"]).split("\n")[:2] == ["now 17, left -4 -13 +58 -42",
                                                            "take -4: 17-4=13"]


def test_first_mistake_names_the_step_that_goes_wrong():
    problem = "Chain 17-4-13+58."
    right = chain.solution(problem).split("\n")
    assert right[-2:] == ["now 58, left none", "\\boxed{58}"]

    def with_line(i, line):
        return "\n".join(right[:i] + [line] + right[i + 1:])

    assert chain.first_mistake(problem, with_line(2, "now 13, left -13")) == "state"
    assert chain.first_mistake(problem, with_line(1, "take -5: 17-5=12")) == "take"
    assert chain.first_mistake(problem, with_line(1, "take -4: 17-4=12")) == "result"
    assert chain.first_mistake(problem, with_line(len(right) - 1, "\\boxed{57}")) == "boxed"
    assert chain.first_mistake(problem, "\n".join(right[:2] + ["\\boxed{13}"])) == "boxed"
    assert chain.first_mistake(problem, "the answer is 58") == "other"


def test_splits_are_disjoint_and_cover_the_task():
    val, test = chain.chain_problems("validation", 300), chain.chain_problems("test", 1000)
    assert len({p["problem"] for p in test}) == 1000
    assert not {p["problem"] for p in val} & {p["problem"] for p in test}
    assert all(split_of(p["problem"]) == "test" for p in test)
    assert all(p["id"].startswith("chain-") and set(p) == {"id", "problem", "answer"} for p in val)
    with pytest.raises(AssertionError):
        chain.chain_problems("dev", 1)


def test_responses_are_long_and_mostly_copies():
    # a solution has a few decisions (the characters of the terms taken) among many restated ones
    lengths, decided = [], []
    for p in islice(problems(300, seed=1), 300):
        text = chain.solution(p["problem"], random.Random(0))
        lengths.append(len(text))
        decided.append(sum(len(line.split(":")[0]) - len("take ") for line in text.split("\n")
                           if line.startswith("take")))
    assert 120 <= sum(lengths) / len(lengths) <= 220
    assert sum(decided) / sum(lengths) < 0.1


def test_demonstrations_are_80_to_150_tokens_of_the_tiny_tokenizer():
    from nano_forkrl.tasks.tiny import build_tiny_tokenizer

    tok = build_tiny_tokenizer(chain)
    rng = random.Random(5)
    lengths = sorted(len(tok(chain.solution(p["problem"], rng))["input_ids"]) + 1  # + eos
                     for p in problems(400, seed=5))
    assert 80 <= lengths[len(lengths) // 2] <= 150  # the median
    assert 80 <= lengths[len(lengths) // 20] and lengths[-len(lengths) // 20] <= 150  # 5% / 95%
