import math

import pytest
import torch

from nano_forkrl.advantage import (dynamic_sampling_keep, group_advantages,
                                   overlong_penalty)


def test_grpo_hand_values_unbiased_std():
    # group 1: mean 0.5, unbiased std sqrt((4 * 0.25) / 3) = sqrt(1/3); group 2: all equal -> 0
    adv = group_advantages(torch.tensor([1.0, 0, 0, 1, 1, 1, 1, 1]), 4)
    a = 0.5 / (math.sqrt(1 / 3) + 1e-6)  # 0.8660...
    torch.testing.assert_close(adv, torch.tensor([a, -a, -a, a, 0, 0, 0, 0]))
    assert abs(a - 0.866025) < 1e-5


def test_drgrpo_is_mean_centred_only():
    adv = group_advantages([1.0, 0, 0, 0, 0.5, 0.5, 0.5, 1.5], 4, normalize_std=False)
    torch.testing.assert_close(adv, torch.tensor([0.75, -0.25, -0.25, -0.25, -0.25, -0.25, -0.25, 0.75]))


def test_eps_is_added_to_the_std():
    # [1, 0]: mean 0.5, unbiased std sqrt(0.5)
    adv = group_advantages([1.0, 0.0], 2, eps=1.0)
    a = 0.5 / (math.sqrt(0.5) + 1.0)
    torch.testing.assert_close(adv, torch.tensor([a, -a]))


def test_integer_rewards_and_device_dtype():
    adv = group_advantages(torch.tensor([1, 0, 1, 1]), 2)
    assert adv.dtype == torch.float32 and adv.shape == (4,)
    assert adv[2] == 0 and adv[3] == 0 and adv[0] > 0 > adv[1]
    assert group_advantages(torch.tensor([1.0, 0.0], dtype=torch.float64), 2).dtype == torch.float64


def test_plus_minus_one_vs_one_zero():
    r01 = torch.tensor([1.0, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 0])
    rpm = 2 * r01 - 1  # DAPO's +1 / -1
    # GRPO: identical (the std doubles along with the deviations; only eps breaks the tie, ~1e-6)
    torch.testing.assert_close(group_advantages(rpm, 4), group_advantages(r01, 4), atol=1e-5, rtol=0)
    # Dr.GRPO: exactly twice as large
    torch.testing.assert_close(group_advantages(rpm, 4, normalize_std=False),
                               2 * group_advantages(r01, 4, normalize_std=False))


@pytest.mark.parametrize("rewards, group_size", [([1.0, 0, 1], 2), ([1.0, 0], 1), ([1.0, float("nan")], 2),
                                                 (torch.ones(2, 2), 2)])
def test_errors(rewards, group_size):
    with pytest.raises(ValueError):
        group_advantages(rewards, group_size)


def test_dynamic_sampling_keep():
    keep = dynamic_sampling_keep(torch.tensor([1.0, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0.5, 0.5, 0.5, 0.25]), 4)
    assert keep.dtype == torch.bool
    assert keep.tolist() == [False] * 4 + [True] * 4 + [False] * 4 + [True] * 4
    with pytest.raises(ValueError):
        dynamic_sampling_keep([1.0, 0.0, 1.0], 2)


def test_overlong_penalty_boundaries():
    # max_len 10, buffer 4: free up to 6, linear ramp to -1 at 10, -1 beyond
    got = overlong_penalty(torch.tensor([0, 6, 7, 8, 10, 11, 50]), max_len=10, buffer=4)
    torch.testing.assert_close(got, torch.tensor([0.0, 0.0, -0.25, -0.5, -1.0, -1.0, -1.0]))
    torch.testing.assert_close(overlong_penalty([6, 7, 10, 11], 10, 4, factor=0.5),
                               torch.tensor([0.0, -0.125, -0.5, -0.5]))
    # buffer == max_len is allowed: the ramp starts at 0
    torch.testing.assert_close(overlong_penalty([0, 5, 10], 10, 10), torch.tensor([0.0, -0.5, -1.0]))


@pytest.mark.parametrize("buffer", [0, -1, 11])
def test_overlong_penalty_rejects_bad_buffer(buffer):
    with pytest.raises(ValueError):
        overlong_penalty([5], max_len=10, buffer=buffer)
