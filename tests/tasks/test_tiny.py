import hashlib
import json
import random
import re

import pytest
import torch
import torch.nn.functional as F

from nano_forkrl.tasks import tiny

STEP = re.compile(r"^(\d+)([+-])(\d+)=(\d+)$")


@pytest.fixture(scope="module")
def tok():
    return tiny.build_tiny_tokenizer()


def lines_of(solution):
    """Split a solution into its step tuples (a, op, b, c) and the boxed value; fail
    on any other shape."""
    *steps, boxed = solution.split("\n")
    parsed = [STEP.match(s).groups() for s in steps]
    return [(int(a), op, int(b), int(c)) for a, op, b, c in parsed], int(re.fullmatch(r"\\boxed\{(\d+)\}", boxed)[1])


def apply(a, op, b):
    return a + b if op == "+" else a - b


def answer_of(problem):
    first, ops = tiny.parse_problem(problem)
    return first + sum(b if op == "+" else -b for op, b in ops)


# --- tokenizer
# ---------------------------------------------------------------------------------------------------

def test_tokenizer_round_trip_digits_and_specials(tok, tmp_path):
    from transformers import AutoTokenizer

    rng = random.Random(1)
    texts = [p["problem"] + "\n" + tiny.solution(p["problem"], rng) for p in (tiny.make_problem(rng)
                                                                                 for _ in range(200))]
    texts += ["Compute 0+99.", "\\boxed{7}", "x = 12345, y=-6\t\n"]
    for s in texts:
        assert tok.decode(tok(s)["input_ids"]) == s
    # every digit is its own token, never merged with a neighbour
    pieces = tok.convert_ids_to_tokens(tok("Compute 1234+56.\n1234+56=1290")["input_ids"])
    assert [p for p in pieces if any(c.isdigit() for c in p)] == list("123456" "123456" "1290")
    assert len(tok("\\boxed{")["input_ids"]) <= 2
    assert tok.convert_ids_to_tokens([tok.pad_token_id, tok.eos_token_id]) == ["<|endoftext|>", "<|im_end|>"]
    assert (tok.pad_token_id, tok.eos_token_id) == (0, 1)
    assert 258 < len(tok) <= 300
    assert tok.decode(tok("1+1=2")["input_ids"] + [tok.eos_token_id], skip_special_tokens=True) == "1+1=2"
    # save / AutoTokenizer round trip, and the same vocabulary on every build
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again.eos_token_id == tok.eos_token_id and again.pad_token_id == tok.pad_token_id
    for s in texts[:20]:
        assert again(s)["input_ids"] == tok(s)["input_ids"]
    assert tiny.build_tiny_tokenizer().get_vocab() == tok.get_vocab()


def test_config_builds_a_small_qwen3(tok):
    from transformers import Qwen3ForCausalLM

    config = tiny.tiny_config(len(tok), tok.pad_token_id, tok.eos_token_id)
    model = Qwen3ForCausalLM(config)
    assert config.model_type == "qwen3" and config.tie_word_embeddings
    assert (config.pad_token_id, config.eos_token_id) == (0, 1)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000
    ids = torch.tensor([tok("Compute 3+4.\n")["input_ids"]])
    assert model(ids).logits.shape == (1, ids.shape[1], len(tok))


# --- task
# --------------------------------------------------------------------------------------------------------

def test_make_problem_arithmetic_and_ranges():
    rng = random.Random(0)
    n_operands = set()
    for _ in range(3000):
        p = tiny.make_problem(rng)
        first, ops = tiny.parse_problem(p["problem"])
        n_operands.add(len(ops) + 1)
        value = first
        assert 0 <= first <= 99
        for op, b in ops:
            assert 1 <= b <= 99
            value = apply(value, op, b)
            assert 0 <= value <= 99
        assert p["answer"] == str(value)
        steps, boxed = lines_of(p["solution"])
        assert boxed == value and all(apply(a, op, b) == c for a, op, b, c in steps)
        assert [(op, b) for _, op, b, _ in steps] == ops and steps[0][0] == first
        assert p["id"].startswith("tiny-")
    assert n_operands == {2, 3, 4}
    # a hand-checked one
    assert tiny.solution("Compute 17+25-8.") == "17+25=42\n42-8=34\n\\boxed{34}"
    assert tiny.parse_problem("Compute 17+25-8.") == (17, [("+", 25), ("-", 8)])


def test_splits_are_disjoint_deterministic_and_shaped_like_load_problems():
    train, test = tiny.tiny_problems("train", 3000), tiny.tiny_problems("test", 300)
    assert len(train) == 3000 and len(test) == 300
    assert all(set(p) == {"id", "problem", "answer"} for p in train + test)
    assert not {p["problem"] for p in train} & {p["problem"] for p in test}
    assert len({p["id"] for p in train}) == 3000
    assert all(tiny.split_of(p["problem"]) == "test" for p in test)
    assert tiny.tiny_problems("test", 300) == test
    assert tiny.tiny_problems("test", 300, seed=1) != test
    with pytest.raises(AssertionError):
        tiny.tiny_problems("valid", 1)


# --- warm start and cache
# ----------------------------------------------------------------------------------------

def test_micro_batches_train_only_on_correct_solutions(tok):
    batch = list(tiny._micro_batches(tok, random.Random(0), 12, "free", 5))
    assert [ids.shape[0] for ids, _ in batch] == [5, 5, 2]
    for ids, target in batch:
        for row, t in zip(ids, target):
            text = tok.decode(row[1:][t])
            prompt = tok.decode(row[:int(t.nonzero()[0]) + 1])
            assert text.endswith("<|im_end|>") and prompt.startswith("Compute ") and prompt.endswith(".\n")
            assert tiny.split_of(prompt[:-1]) == "train"
            steps, boxed = lines_of(text[:-len("<|im_end|>")])
            assert boxed == steps[-1][3] == answer_of(prompt[:-1])
            # never a slip
            assert all(apply(a, op, b) == c and 0 <= c <= 99 for a, op, b, c in steps)
            assert not (row[1:][t] == tok.pad_token_id).any()


def test_a_few_warm_start_steps_lower_the_loss(tok):
    from transformers import Qwen3ForCausalLM

    torch.manual_seed(0)
    model = Qwen3ForCausalLM(tiny.tiny_config(len(tok)))
    batch = list(tiny._micro_batches(tok, random.Random(123), 32, "free", 32))

    def loss():
        with torch.no_grad():
            return sum(F.cross_entropy(model(ids).logits[:, :-1][t], ids[:, 1:][t]) for ids, t in batch)

    before = loss()
    assert tiny.warm_start(model, tok, steps=10, batch_size=16) is model and not model.training
    assert loss() < before - 1.5  # from ~ln(270) = 5.6 nats: the copyable tokens are learnt first


def test_load_tiny_builds_caches_and_reloads(tmp_path, monkeypatch):
    from transformers import AutoTokenizer, Qwen3ForCausalLM

    model, tokenizer = tiny.load_tiny(tmp_path, steps=3, batch_size=8)
    assert not model.training and model.dtype == torch.float32
    folders = list(tmp_path.iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("tiny-")  # no temp folder left behind
    # an ordinary Hugging Face folder
    plain, plain_tok = Qwen3ForCausalLM.from_pretrained(folders[0]), AutoTokenizer.from_pretrained(folders[0])
    assert plain_tok("Compute 1+2.")["input_ids"] == tokenizer("Compute 1+2.")["input_ids"]
    out = plain.generate(torch.tensor([plain_tok("Compute 1+2.\n")["input_ids"]]), max_new_tokens=3, do_sample=False)
    assert out.shape[1] >= 8
    # second call: from the cache, no training (a training call would fail)
    monkeypatch.setattr(tiny, "warm_start", lambda *a, **k: pytest.fail("warm start re-run"))
    again, _ = tiny.load_tiny(tmp_path, steps=3, batch_size=8)
    for a, b in zip(model.state_dict().values(), again.state_dict().values()):
        assert torch.equal(a, b)
    # other settings or seed -> another folder (that one would have to be trained)
    with pytest.raises(pytest.fail.Exception):
        tiny.load_tiny(tmp_path, steps=4, batch_size=8)
    with pytest.raises(pytest.fail.Exception):
        tiny.load_tiny(tmp_path, steps=3, batch_size=8, seed=1)
    with pytest.raises(pytest.fail.Exception):
        tiny.load_tiny(tmp_path, force=True, steps=3, batch_size=8)


def test_env_var_sets_the_default_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NANO_FORKRL_CACHE", str(tmp_path / "cache"))
    tiny.load_tiny(steps=1, batch_size=4)
    assert len(list((tmp_path / "cache").glob("tiny-*"))) == 1


def test_a_killed_build_leaves_no_cache_and_its_temp_is_ignored(tmp_path, monkeypatch):
    from transformers import PreTrainedTokenizerFast

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # dies after the weights were written, before the rename

    with monkeypatch.context() as m:
        m.setattr(PreTrainedTokenizerFast, "save_pretrained", killed)
        with pytest.raises(KeyboardInterrupt):
            tiny.load_tiny(tmp_path, steps=1, batch_size=4)
    stale = list(tmp_path.iterdir())
    assert len(stale) == 1 and "-tmp-" in stale[0].name and (stale[0] / "config.json").exists()
    # rebuilds; the stale temp is not read
    model, tokenizer = tiny.load_tiny(tmp_path, steps=1, batch_size=4)
    done = [p for p in tmp_path.iterdir() if p != stale[0]]
    assert len(done) == 1 and (done[0] / "tokenizer.json").exists() and not done[0].name.startswith(".")


def test_the_cache_is_reused_under_another_transformers_version(tmp_path, monkeypatch):
    """The cache key holds the model's config, the warm-start settings, the seed and VERSION, not
    the version of transformers that wrote it (a cache built under one release is not
    rebuilt under the next)."""
    import transformers

    tiny.load_tiny(tmp_path, steps=3, batch_size=8)
    monkeypatch.setattr(tiny, "warm_start", lambda *a, **k: pytest.fail("warm start re-run"))
    monkeypatch.setattr(transformers, "__version__", "9.99.0")
    monkeypatch.setattr("transformers.configuration_utils.__version__", "9.99.0", raising=False)
    tiny.load_tiny(tmp_path, steps=3, batch_size=8)
    assert len(list(tmp_path.iterdir())) == 1


def test_is_tiny_names_only_the_embedded_job():
    assert tiny.is_tiny("tiny")
    for name in ("Tiny", "tiny/", "random:tiny", "Qwen/Qwen3-0.6B", "", None):
        assert not tiny.is_tiny(name)


def test_the_callers_ask_is_tiny(monkeypatch):
    """Rename the embedded job: data loading, the memory plan and random weights follow is_tiny."""
    from nano_forkrl.run.setup.memplan import model_config
    from nano_forkrl.run.setup.policy import random_policy
    from nano_forkrl.tasks.data import load_split

    monkeypatch.setattr(tiny, "NAME", "embedded")
    assert load_split("embedded", "test", limit=3) == tiny.tiny_problems("test", 3)
    assert model_config("random:embedded") == tiny.tiny_config(300).to_dict()
    model, tokenizer = random_policy("embedded", "cpu")
    assert len(tokenizer) == len(tiny.build_tiny_tokenizer())
    assert model.config.hidden_size == tiny.tiny_config(300).hidden_size


def test_no_other_module_compares_a_name_with_tiny():
    """The decision has one owner: outside tasks/tiny.py no `x == "tiny"` /
    `x != "tiny"` / `in (...)`."""
    import ast
    from pathlib import Path

    package = Path(tiny.__file__).resolve().parents[1]
    found = []
    for path in sorted(package.rglob("*.py")):
        if path.name == "tiny.py" and path.parent.name == "tasks":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                sides = [node.left, *node.comparators]
                groups = [s for s in sides if isinstance(s, (ast.Tuple, ast.List, ast.Set))]
                sides += [e for s in groups for e in s.elts]
                if any(isinstance(s, ast.Constant) and s.value == "tiny" for s in sides):
                    found.append(f"{path.relative_to(package)}:{node.lineno}")
    assert not found, f"compare with 'tiny' outside tasks/tiny.py (ask tiny.is_tiny): {found}"


def test_the_tiny_presets_cache_folder_is_unchanged_by_the_task_parameter(tmp_path):
    # the key as it was before tasks: config without transformers_version, settings, seed, VERSION
    config = {k: v for k, v in tiny.tiny_config(300).to_dict().items() if k != "transformers_version"}
    settings = {**tiny.WARM, "steps": 1, "batch_size": 4}
    key = json.dumps([config, settings, 0, tiny.VERSION], sort_keys=True, default=str)
    tiny.load_tiny(tmp_path, steps=1, batch_size=4)
    name = "tiny-" + hashlib.sha256(key.encode()).hexdigest()[:12]
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_the_builder_warm_starts_on_the_chain_task(tmp_path, monkeypatch):
    model, tokenizer = tiny.load_tiny(tmp_path, task="chain", steps=2, batch_size=4)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert len(names) == 1 and names[0].startswith("chain-")  # its own folder, next to tiny-*
    vocab = tokenizer.get_vocab()
    assert "take" in vocab and "Ġleft" in vocab  # the chain's merges
    monkeypatch.setattr(tiny, "warm_start", lambda *a, **k: pytest.fail("warm start re-run"))
    tiny.load_tiny(tmp_path, task="chain", steps=2, batch_size=4)  # cached
    with pytest.raises(pytest.fail.Exception):  # the same settings on the tiny task: another model
        tiny.load_tiny(tmp_path, steps=2, batch_size=4)
    task = tiny.TASKS["chain"]
    ids, target = next(tiny._micro_batches(tokenizer, random.Random(0), 4, "free", 4, task))
    text = tokenizer.decode(ids[0][1:][target[0]])
    assert text.startswith("now ") and "take " in text and "\\boxed{" in text


def test_the_chain_testbed_is_a_model_a_data_source_and_a_preset():
    from nano_forkrl.run.setup.config import parse_args
    from nano_forkrl.run.setup.policy import random_policy
    from nano_forkrl.tasks.chain import chain_problems
    from nano_forkrl.tasks.data import load_split

    assert tiny.task_of("chain") == "chain" and tiny.task_of("tiny") == "tiny"
    assert tiny.is_tiny("chain") and tiny.task_of("Chain") is None
    assert load_split("chain", "test", limit=3) == chain_problems("test", 3)
    assert load_split("tiny", "test", limit=3) == tiny.tiny_problems("test", 3)
    _, tokenizer = random_policy("chain", "cpu")
    assert "take" in tokenizer.get_vocab()  # the chain task's tokenizer, not the arithmetic one
    cfg = parse_args(["--preset", "chain"])
    assert (cfg.model, cfg.train_data, cfg.eval_data) == ("chain", "chain", "chain")
    assert cfg.max_new_tokens == 160  # the longest demonstration is about 135 tokens
