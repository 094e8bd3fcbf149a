"""The homework's parts in one place: what each part is, its tutorial, and the tests that grade it.

A part is the set of solution regions whose marker names it (`# BEGIN SOLUTION <part>` ...
`# END SOLUTION` inside a function body; assignment/markers.py). For each part this registry holds
  tutorial  the notebook in tutorials/ that explains it (named in the student's
            NotImplementedError),
  tests     pytest node ids of the repository's tests of the part, each failing while
            the part is blank: the
            students' development tests (the handout names their files). What is graded are the
            part's cases (cases.py: public ones in public.py, hidden ones in hidden*.py),
  needs     the other parts that these tests also run through (while one of them is
            blank, they fail too),
  cs336     what plays the same role in the CS336 GRPO assignment (its names live in
            nano_forkrl/cs336.py),
  hours     an estimate of a student's time, and points (100 in all).
"""
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    name: str
    tutorial: str
    points: int
    hours: str
    tests: tuple[str, ...]
    needs: tuple[str, ...] = ()
    cs336: tuple[str, ...] = ()


def _nodes(file, *names):
    """Node ids of the tests `names` of tests/`file` (the whole file if no name is given)."""
    return tuple(f"tests/{file}::{n}" for n in names) or (f"tests/{file}",)


_SAMPLING = _nodes("test_sampling.py", "test_sample_next_greedy_and_logprob",
                   "test_sample_next_temperature_logprob_is_policy_logprob",
                   "test_top_p_keeps_only_the_nucleus",
                   "test_sample_next_distribution_matches_softmax")
_EXTRACT = _nodes("verifier/test_extract.py", "test_extract_answer", "test_extract_answer_none",
                  "test_long_list_of_boxes_is_linear_and_joined")
# not test_r1_zero_reward_fn: its format-only cases pass on a blank part (cs336.py
# checks the format itself)
_VERIFY = _nodes("test_verify.py", "test_equivalent", "test_not_equivalent",
                 "test_non_strings_are_not_equal", "test_reward")
_ADVANTAGE = (*_nodes("test_advantage.py"),
              *_nodes("test_cs336.py", "test_compute_group_normalized_rewards_cs336"))
_ENTROPY = _nodes("test_entropy.py", "test_uniform_logits_give_log_v",
                  "test_peaked_logits_give_zero_and_two_way_tie_gives_log2",
                  "test_entropy_matches_naive_float64", "test_bf16_input_gives_float32_output")
_LOGPROBS = (*_nodes("test_entropy.py", "test_logprobs_from_logits_hand_values_and_temperature",
                     "test_logprobs_from_logits_matches_log_softmax_gather",
                     "test_chunked_equals_naive_for_any_chunk_size",
                     "test_labels_convention_matches_shifted_convention",
                     "test_padding_left_and_right", "test_temperature",
                     "test_gradients_match_naive", "test_no_grad_path_returns_plain_tensors",
                     "test_head_only_ever_sees_chunks_forward_and_backward",
                     "test_score_batch_equals_one_full_pass_on_real_tokens"),
             *_nodes("test_cs336.py", "test_cs336_get_response_log_probs"))
# not test_errors, test_selection_rejects_unknown_sources_and_per_sequence_with_current (the
# argument checks stay in the student copy), nor test_more_than_2_pow_24_elements (slow)
_MASK = (*_nodes("test_masking.py", "test_masked_sum_mean_normalize_hand_values",
                 "test_all_zero_mask_mean_is_nan_like_cs336",
                 "test_garbage_under_the_mask_is_ignored_and_gradient_is_mask_over_count",
                 "test_matches_cs336_formula_on_random_3d", "test_top_matches_brute_force",
                 "test_k_is_exact_ceil_without_float_error",
                 "test_hand_example_and_ties_go_to_earlier_positions",
                 "test_rho_one_and_zero", "test_per_sequence_counts_and_empty_rows",
                 "test_random_mode_size_support_reproducibility_and_uniformity",
                 "test_infinite_scores_still_rank_valid_tokens_first",
                 "test_selection_from_the_rollout_is_the_batch_mask_and_fixed_per_micro_batch",
                 "test_selection_from_the_current_policy_ranks_each_micro_batch"),
         *_nodes("test_cs336.py", "test_cs336_keyword_names"))
_LOSS = (*_nodes("test_loss.py"),
         *_nodes("test_cs336.py", "test_cs336_grpo_clip_equals_native_symmetric",
                 "test_compute_policy_gradient_loss_types",
                 "test_grpo_microbatch_train_step_matches_hand_formula"))
_UPDATE = _nodes("test_update.py")

PARTS = {p.name: p for p in (
    Part("sampling", "02_sampling.ipynb", 10, "0.5-1", _SAMPLING,
         cs336=("none: CS336 samples with vLLM's SamplingParams(temperature, top_p)",)),
    Part("extract", "03_verification.ipynb", 10, "1-2", _EXTRACT,
         cs336=("the answer parsing inside r1_zero_reward_fn",)),
    Part("verify", "03_verification.ipynb", 15, "2-3", _VERIFY, needs=("extract",),
         cs336=("r1_zero_reward_fn's grader",)),
    Part("advantage", "04_advantages.ipynb", 10, "0.5-1", _ADVANTAGE,
         cs336=("compute_group_normalized_rewards",)),
    Part("entropy", "05_entropy.ipynb", 5, "0.5", _ENTROPY, cs336=("compute_entropy",)),
    Part("logprobs", "05_entropy.ipynb", 15, "1.5-2.5", _LOGPROBS, needs=("entropy",),
         cs336=("get_response_log_probs",)),
    Part("mask", "06_masking_forking_tokens.ipynb", 10, "1-1.5", _MASK,
         cs336=("masked_mean", "masked_normalize")),
    Part("loss", "07_update.ipynb", 10, "1-1.5", _LOSS, needs=("mask",),
         cs336=("compute_naive_policy_gradient_loss", "compute_grpo_clip_loss",
                "compute_policy_gradient_loss", "grpo_microbatch_train_step")),
    Part("update", "07_update.ipynb", 15, "2-3", _UPDATE,
         needs=("entropy", "logprobs", "mask", "loss"),
         cs336=("the train loop's gradient accumulation around grpo_microbatch_train_step",)),
)}
