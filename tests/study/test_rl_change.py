import pytest
import torch

from nano_forkrl.tasks.arithmetic import token_classes
from nano_forkrl.tasks.tiny import build_tiny_tokenizer
from nano_forkrl.study import rl_change


def test_percentile_ranks_and_buckets_by_hand():
    h0 = torch.tensor([[0.0, 0.1, 0.2, 0.3], [0.4, 0.5, 0.6, 0.7]])
    h1 = h0 * torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.5, 0.5]])  # only the top quarter changes
    mask = torch.ones_like(h0, dtype=torch.bool)
    assert rl_change.percentile_ranks(torch.tensor([3.0, 1.0, 2.0, 1.0])).tolist() == [75.0, 0.0, 50.0, 25.0]
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
    assert rl_change.overlap_by_checkpoint(h0, {20: moved, 10: same}, mask, rho=0.2) == [(10, 1.0), (20, 0.0)]


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
