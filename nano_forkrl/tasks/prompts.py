"""Prompt templates: how a problem is put to the model.

"{problem}" is replaced literally (str.replace, so braces such as \\boxed{} are safe). The chat
templates are the user message, rendered by the tokenizer's chat template; the others are plain text
that the model continues.
"""
QWEN_MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
TEMPLATES = {
    # base models: a plain-text dialogue ending in the "Assistant:" cue; the model continues with
    # its reasoning
    "boxed": ("Below, a User asks a math question and an Assistant answers it. The Assistant first "
              "works through the problem step by step, showing its reasoning, and then gives the "
              "final answer in \\boxed{}.\nUser: {problem}\nAssistant:"),
    # the R1-Zero format that CS336's r1_zero_reward_fn checks: the response ends
    # "</think> <answer>...</answer>"
    "r1-zero": ("A User asks a question and the Assistant solves it. The Assistant reasons "
                "first, inside <think> </think>, then states the answer inside <answer> </answer>: "
                "<think> reasoning </think> <answer> answer </answer>.\nUser: {problem}\n"
                "Assistant: <think>"),
    # Qwen3 chat models: this is the user message, rendered by the tokenizer's chat template
    "qwen-chat": "{problem}\n" + QWEN_MATH_INSTRUCTION,
    "qwen-chat-nothink": "{problem}\n" + QWEN_MATH_INSTRUCTION,
    "plain": "{problem}\n",  # the tiny synthetic task: no instructions at all
}
_CHAT_THINKING = {"qwen-chat": True, "qwen-chat-nothink": False}  # chat template -> enable_thinking


def format_prompt(problem, template="boxed", tokenizer=None):
    """Prompt text for one problem. The chat templates need the tokenizer. "-nothink" renders
    Qwen3's empty <think></think> block, so the model answers without thinking."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; choose one of {sorted(TEMPLATES)}")
    text = TEMPLATES[template].replace("{problem}", problem)
    if template not in _CHAT_THINKING:
        return text
    if tokenizer is None:
        raise ValueError(f"template {template!r} needs the tokenizer (it uses the tokenizer's chat "
                         "template)")
    return tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                         add_generation_prompt=True,
                                         enable_thinking=_CHAT_THINKING[template])
