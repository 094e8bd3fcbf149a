"""Tests for nano_forkrl/run/setup/config.py: presets, overrides, clear errors for bad values."""
import pytest

from nano_forkrl.run.setup.config import PRESETS, Config, parse_args
from nano_forkrl.run.setup.validate import validate


def test_default_is_the_tiny_preset():
    cfg = parse_args([])
    assert cfg.preset == "tiny" and cfg.model == "tiny" and cfg.rho == 0.2 and cfg.group_size >= 2


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_is_valid(name):
    cfg = parse_args(["--preset", name])
    assert cfg.preset == name
    if name.startswith("qwen3-"):  # tiny and chain are the embedded CPU jobs
        assert cfg.model.startswith("Qwen/Qwen3-") and cfg.lr == 1e-6 and cfg.eps_high == 0.28


def test_flags_override_the_preset():
    cfg = parse_args(["--preset", "qwen3-0.6b", "--rho", "1.0", "--model", "/tmp/x",
                      "--no-dynamic-sampling", "--mask-mode", "random"])
    got = (cfg.rho, cfg.model, cfg.dynamic_sampling, cfg.mask_mode)
    assert got == (1.0, "/tmp/x", False, "random")
    assert cfg.group_size == PRESETS["qwen3-0.6b"]["group_size"]


@pytest.mark.parametrize("argv, message", [
    (["--rho", "1.5"], "rho must be in [0, 1]"),
    (["--rho", "-0.1"], "rho must be in [0, 1]"),
    (["--group-size", "1"], "group_size must be >= 2"),
    (["--prompts-per-step", "10", "--mini-batch-prompts", "4"], "multiple of mini_batch_prompts"),
    (["--temperature", "0"], "temperature 0"),
    (["--top-p", "0"], "top_p"),
    (["--lr", "0"], "lr must be > 0"),
    (["--steps", "0"], "steps must be >= 1"),
    (["--dual-clip", "0.5"], "dual_clip"),
    (["--preset", "qwen3-0.6b", "--max-new-tokens", "16"], "overlong_buffer"),
    # the mask's and the objective's own rules, reported from TokenSelection / UpdateSettings
    (["--per-sequence", "--mask-source", "current"],
     "per_sequence ranks within each rollout response"),
    (["--eps-low", "1.0"], "need 0 <= eps_low < 1"),
    (["--entropy-coef", "-0.01"], "entropy_coef must be >= 0"),
])
def test_bad_values_give_clear_errors(argv, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_args(argv)


def test_unknown_preset_and_choice_exit_with_a_message(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--preset", "qwen9-100b"])
    assert "unknown preset" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse_args(["--mask-mode", "middle"])
    assert "invalid choice" in capsys.readouterr().err


def test_validate_checks_choices_on_a_dataclass_too():
    with pytest.raises(ValueError, match="loss_agg"):
        validate(Config(loss_agg="sum"))


@pytest.mark.parametrize("argv, message", [
    (["--lr", "inf"], "lr must be a finite number"),
    (["--lr", "nan"], "lr must be a finite number"),
    (["--lr", "1e30"], "lr must be > 0 and at most 1"),
    (["--temperature", "nan"], "temperature must be a finite number"),
    (["--temperature", "1e9"], "temperature <= 10"),
    (["--top-p", "nan"], "top_p must be a finite number"),
    (["--rho", "nan"], "rho must be in"),
    (["--max-grad-norm", "-1"], "max_grad_norm must be >= 0"),
    (["--weight-decay", "inf"], "weight_decay must be a finite number"),
    (["--kl-coef", "-0.1"], "kl_coef must be >= 0"),
    (["--reward-correct", "0", "--reward-wrong", "0"], "reward_correct"),
    (["--eval-k", "0"], "eval_k must be >= 1"),
    (["--save-every", "-1"], "save_every must be >= 0"),
    (["--max-prompt-tokens", "-5"], "max_prompt_tokens must be >= 0"),
    (["--vllm-gpu-memory", "2"], "vllm_gpu_memory"),
    (["--resume", "--overwrite"], "pass one of them"),
])
def test_non_finite_and_absurd_values_are_refused(argv, message):
    with pytest.raises(ValueError, match=message):
        parse_args(argv)


def test_the_new_run_flags_parse():
    cfg = parse_args(["--overwrite", "--max-prompt-tokens", "100", "--debug"])
    assert (cfg.overwrite, cfg.max_prompt_tokens, cfg.debug, cfg.resume) == (True, 100, True, False)


def test_every_flag_has_help_text(capsys):
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    out = capsys.readouterr().out
    from dataclasses import fields
    for f in fields(Config):
        assert f.metadata["help"], f.name
        assert "--" + f.name.replace("_", "-") in out
    assert "(default: " in out and "answer checker" in out
