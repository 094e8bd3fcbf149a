import json

import pytest
import torch
from conftest import make_tiny_qwen3

from nano_forkrl.tasks.arithmetic import token_classes
from nano_forkrl.tasks.tiny import build_tiny_tokenizer
from nano_forkrl.study import rl_change


def test_percentile_ranks_and_buckets_by_hand():
    h0 = torch.tensor([[0.0, 0.1, 0.2, 0.3], [0.4, 0.5, 0.6, 0.7]])
    # only the top quarter changes
    h1 = h0 * torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.5, 0.5]])
    mask = torch.ones_like(h0, dtype=torch.bool)
    ranks = rl_change.percentile_ranks(torch.tensor([3.0, 1.0, 2.0, 1.0]))
    assert ranks.tolist() == [75.0, 0.0, 50.0, 25.0]
    rows = rl_change.entropy_change_by_bucket(h0, h1, mask, edges=(0, 50, 75, 100))
    assert [r["n"] for r in rows] == [4, 2, 2]
    assert rows[0]["change"] == 0 and rows[1]["change"] == 0
    assert rows[2]["before"] == pytest.approx(0.65) and rows[2]["after"] == pytest.approx(0.325)
    masked = rl_change.entropy_change_by_bucket(h0, h1, mask & (h0 > 0.05), edges=(0, 100))
    assert masked[0]["n"] == 7  # padding (mask False) never enters a bucket


def test_overlap_by_checkpoint():
    h0 = torch.arange(10.0)[None]
    mask = torch.ones_like(h0, dtype=torch.bool)
    same, moved = h0.clone(), h0.flip(1)
    got = rl_change.overlap_by_checkpoint(h0, {20: moved, 10: same}, mask, rho=0.2)
    assert got == [(10, 1.0), (20, 0.0)]


def test_class_table_counts_every_response_token():
    tok = build_tiny_tokenizer()
    ids = tok("17-8=9\n9+25=34\n\\boxed{34}")["input_ids"] + [tok.eos_token_id]
    labels = torch.tensor([ids])
    entropy = torch.zeros(labels.shape)
    classes = token_classes([tok.decode([i]) for i in ids])
    entropy[0, classes.index("operator")] = 1.0  # the first decision is the one high-entropy token
    mask = torch.ones_like(labels, dtype=torch.bool)
    table = rl_change.class_table(entropy, mask, labels, tok, token_classes, rho=1 / len(ids))
    assert sum(r["n"] for r in table.values()) == len(ids)
    assert table["operator"]["share_top"] == 1.0 and table["operator"]["in_top"] == 0.5
    assert table["result digit"]["n"] == 3 and table["result digit"]["share_top"] == 0
    assert next(iter(table)) == "operator"  # classes are listed by their number of top tokens


def test_overlaps_with_names_each_model():
    h0 = torch.arange(10.0)[None]
    mask = torch.ones_like(h0, dtype=torch.bool)
    got = rl_change.overlaps_with(h0, {"same": h0 * 2, "reversed": h0.flip(1)}, mask, rho=0.2)
    assert got == {"same": 1.0, "reversed": 0.0}


def test_load_model_reads_a_warm_start_seed(monkeypatch):
    calls = []

    class Model:
        def eval(self):
            return self

    def fake_load_policy(name, device, seed=0):
        calls.append((name, device, seed))
        return Model(), "tok"

    monkeypatch.setattr(rl_change, "load_policy", fake_load_policy)
    rl_change.load_model("tiny:3")
    rl_change.load_model("runs/x/checkpoint")
    assert calls == [("tiny", "cpu", 3), ("runs/x/checkpoint", "cpu", 0)]


def test_cli_scores_other_models_on_the_base_responses(tmp_path):
    tok = build_tiny_tokenizer()
    for name, seed in (("base", 5), ("other", 6)):
        m = make_tiny_qwen3(vocab_size=288, seed=seed)
        m.save_pretrained(tmp_path / name)
        tok.save_pretrained(tmp_path / name)
    out = tmp_path / "overlap.json"
    args = ["--base", str(tmp_path / "base"), "--compare", f"itself={tmp_path / 'base'}",
            "--compare", f"other={tmp_path / 'other'}", "--n", "2", "--k", "2", "--draws", "2",
            "--draw-n", "2", "--out", str(out)]
    result = rl_change.main(args)
    assert json.loads(out.read_text()) == result
    assert result["overlap"]["itself"] == 1.0 and 0.0 <= result["overlap"]["other"] <= 1.0
    assert result["overlap"]["other"] < 1.0  # another random model ranks the positions differently
    p80 = result["p80"]
    assert len(p80["draws"]) == 2 and p80["low"] == min(p80["draws"]) <= p80["high"]
    assert result["command"].endswith(" ".join(args)) and result["tokens"] > 0
