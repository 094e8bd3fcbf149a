"""Tests for nano_forkrl/run/setup/bounds.py: prompts too long for the model are caught before
sampling."""
import pytest

from nano_forkrl.run.setup.bounds import check_lengths, drop_long, prompt_lengths, prompt_limit
from nano_forkrl.utils.errors import RunError
from nano_forkrl.tasks.tiny import build_tiny_tokenizer, tiny_config


class Model:
    config = tiny_config(300)  # max_position_embeddings 256


def _problems(*sizes):
    return [{"id": f"p{i}", "problem": "1+" * n + "1=", "answer": "2"} for i, n in enumerate(sizes)]


def test_the_limit_is_the_context_minus_the_response_or_the_configured_one():
    assert prompt_limit(Model(), 48) == 256 - 48
    assert prompt_limit(Model(), 48, max_prompt_tokens=100) == 100
    assert prompt_limit(Model(), 48, max_prompt_tokens=1000) == 256 - 48
    assert prompt_limit(object(), 48) is None and prompt_limit(object(), 48, 7) == 7
    with pytest.raises(RunError, match="no room for a prompt"):
        prompt_limit(Model(), 256)


def test_long_training_prompts_are_dropped_and_counted():
    tok = build_tiny_tokenizer()
    # a 100 KB problem among short ones, hundreds of times the model's context
    problems = _problems(2, 50_000, 3)
    lengths = prompt_lengths(problems, "plain", tok)
    assert lengths[1] > 50_000 and lengths[0] < 20
    kept, dropped = drop_long(problems, "plain", tok, 208)
    assert [p["id"] for p in kept] == ["p0", "p2"] and dropped == 1
    assert drop_long(problems, "plain", tok, None) == (problems, 0)
    with pytest.raises(RunError, match="every one of the 3 training problems"):
        drop_long(problems, "plain", tok, 1)


def test_a_long_evaluation_prompt_is_an_error_naming_the_problem():
    tok = build_tiny_tokenizer()
    check_lengths(_problems(2, 3), "plain", tok, 208)  # all fit: nothing happens
    with pytest.raises(RunError, match=r"held-out: problem 'p1' is a \d+-token prompt, "
                                       r"over the limit of 208.*1 of 2"):
        check_lengths(_problems(2, 500), "plain", tok, 208, what="held-out")
