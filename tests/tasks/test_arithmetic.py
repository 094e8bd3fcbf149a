import random
import re

from nano_forkrl.tasks import arithmetic as ar

STEP = re.compile(r"^(\d+)([+-])(\d+)=(\d+)$")


def steps_of(solution):
    *lines, boxed = solution.split("\n")
    steps = [STEP.match(s).groups() for s in lines]
    answer = int(re.fullmatch(r"\\boxed\{(\d+)\}", boxed)[1])
    return [(int(a), op, int(b), int(c)) for a, op, b, c in steps], answer


def test_free_solutions_are_correct_permutations_inside_the_range():
    rng, orders = random.Random(0), set()
    for _ in range(2000):
        p = ar.make_problem(rng)
        first, terms = ar.parse_problem(p["problem"])
        steps, boxed = steps_of(ar.solution(p["problem"], rng))
        assert steps[0][0] == first and str(boxed) == p["answer"]
        assert sorted((op, b) for _, op, b, _ in steps) == sorted(terms)
        for i, (a, op, b, c) in enumerate(steps):
            assert c == (a + b if op == "+" else a - b) and 0 <= c <= 99
            assert i == 0 or a == steps[i - 1][3]
        orders.add([(op, b) for _, op, b, _ in steps] == terms)
    assert orders == {True, False}  # the free order really differs from left to right sometimes


def test_fixed_solution_by_hand_and_a_forced_order():
    assert ar.solution("Compute 17+25-8.") == "17+25=42\n42-8=34\n\\boxed{34}"
    # 95: +8 first would leave [0, 99], so every free solution starts with -50
    rng = random.Random(1)
    assert {ar.solution("Compute 95+8-50.", rng).split("\n")[0] for _ in range(20)} == {"95-50=45"}
    assert {ar.solution("Compute 10+5+7.", rng).split("\n")[0] for _ in range(50)} == {"10+5=15", "10+7=17"}


def test_three_splits_never_overlap():
    sets = {s: ar.tiny_problems(s, 300) for s in ar.SPLITS}
    strings = {s: {p["problem"] for p in ps} for s, ps in sets.items()}
    assert all(len(v) == 300 for v in strings.values())
    assert not strings["train"] & strings["test"] and not strings["train"] & strings["validation"]
    assert not strings["validation"] & strings["test"]
    assert all(ar.split_of(p) == s for s, v in strings.items() for p in v)
    assert ar.tiny_problems("test", 300) == sets["test"]


def test_token_classes_of_a_solution():
    pieces = ["1", "7", "-", "8", "=", "9", "\n", "9", "+", "2", "5", "=", "3", "4", "\n",
              "\\boxed", "{", "3", "4", "}", "<|im_end|>"]
    assert ar.token_classes(pieces) == [
        "running value", "running value", "operator", "operand", "=", "result digit", "newline",
        "running value", "operator", "operand", "operand", "=", "result digit", "result digit", "newline",
        "\\boxed{ }", "\\boxed{ }", "boxed answer digit", "boxed answer digit", "\\boxed{ }", "<|im_end|>"]
    assert ar.token_classes(["x", "=", "+"]) == ["other", "other", "other"]
    assert set(ar.token_classes(pieces)) <= set(ar.CLASSES)


def test_first_mistake_names_the_first_wrong_step():
    p = "Compute 17+25-8."
    assert ar.first_mistake(p, "17-8=9\n9+25=34\n\\boxed{34}") is None
    assert ar.first_mistake(p, "17-8=9\n9+25=33\n\\boxed{33}") == "result digit"
    assert ar.first_mistake(p, "17-9=8\n8+25=33\n\\boxed{33}") == "operand"
    assert ar.first_mistake(p, "17-8=9\n\\boxed{9}") == "missing term"
    assert ar.first_mistake(p, "17-8=9\n8+25=33\n\\boxed{33}") == "running value"
    assert ar.first_mistake(p, "17-8=9\n9+25=34\n\\boxed{35}") == "boxed answer digit"
    assert ar.first_mistake("Compute 5-3+1.", "5-3=2\n2-1=1\n\\boxed{1}") == "operand"  # -1 is no term
    assert ar.first_mistake(p, "") == ar.first_mistake(p, "17-8=9\nhello") == "other"
