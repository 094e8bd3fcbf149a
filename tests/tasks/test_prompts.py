"""Tests for nano_forkrl/tasks/prompts.py: the prompt templates, braces kept literally, and the chat
templates rendered by the tokenizer with Qwen3's thinking flag."""
import pytest

from nano_forkrl.tasks.prompts import TEMPLATES, format_prompt


def test_r1_zero_and_plain_templates():
    problem = "Let $f(x)=\\{x\\}$. Find {y}."  # braces must survive untouched
    prompt = format_prompt(problem)  # boxed is the default
    assert prompt == TEMPLATES["boxed"].replace("{problem}", problem)
    assert problem in prompt and "\\boxed{}" in prompt and "step by step" in prompt
    assert prompt.endswith("\nAssistant:")
    assert format_prompt(problem, "plain") == problem + "\n"
    assert set(TEMPLATES) == {"boxed", "r1-zero", "qwen-chat", "qwen-chat-nothink", "plain"}


def test_template_errors():
    with pytest.raises(ValueError, match="unknown template"):
        format_prompt("p", "llama")
    with pytest.raises(ValueError, match="needs the tokenizer"):
        format_prompt("p", "qwen-chat")


def test_chat_templates_pass_user_message_and_thinking_flag():
    calls = []

    class FakeTokenizer:
        def apply_chat_template(self, messages, **kwargs):
            calls.append((messages, kwargs))
            return "rendered"

    assert format_prompt("What is 2+2?", "qwen-chat", FakeTokenizer()) == "rendered"
    format_prompt("What is 2+2?", "qwen-chat-nothink", FakeTokenizer())
    content = ("What is 2+2?\nPlease reason step by step, and put your final answer within "
               "\\boxed{}.")
    for (messages, kwargs), thinking in zip(calls, [True, False]):
        assert messages == [{"role": "user", "content": content}]
        assert kwargs == {"tokenize": False, "add_generation_prompt": True,
                          "enable_thinking": thinking}


def test_qwen_chat_templates_with_real_tokenizer(qwen3_tokenizer):
    user = ("<|im_start|>user\nWhat is 2+2?\nPlease reason step by step, and put your final answer "
            "within \\boxed{}.")
    think = format_prompt("What is 2+2?", "qwen-chat", qwen3_tokenizer)
    assert think == user + "<|im_end|>\n<|im_start|>assistant\n"  # the model opens <think> itself
    nothink = format_prompt("What is 2+2?", "qwen-chat-nothink", qwen3_tokenizer)
    # empty thought
    assert nothink == user + "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
    ids = qwen3_tokenizer(nothink, add_special_tokens=False)["input_ids"]
    assert 151667 in ids and 151668 in ids  # <think> and </think> are single special tokens
