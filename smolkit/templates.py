"""Chat templates: the guide's Human/Assistant format, fixed for assistant-only loss."""

from __future__ import annotations

from typing import Any

# The seed guide's "Human: ... / Assistant: ..." template, corrected in four ways:
#   1. `{% generation %}` markers around assistant text, so TRL's assistant_only_loss works;
#   2. the EOS token closes every assistant turn, so the model learns to stop;
#   3. system messages are rendered instead of silently dropped;
#   4. the generation prompt ends in "Assistant:" without the trailing space, so the prompt's tokens are a prefix
#      of prompt + answer (the space tokenizes with the answer's first word).
GUIDE_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}"
    "{{- 'System: ' + message['content'] + '\n\n' }}"
    "{%- elif message['role'] == 'user' %}"
    "{{- 'Human: ' + message['content'] + '\n\n' }}"
    "{%- elif message['role'] == 'assistant' %}"
    "{{- 'Assistant: ' }}"
    "{%- generation %}{{- message['content'] + eos_token }}{%- endgeneration %}"
    "{%- if not loop.last %}{{- '\n\n' }}{%- endif %}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- 'Assistant:' }}{%- endif %}"
)

# The seed guide's template exactly as written (no EOS, no generation markers, drops
# system messages); kept to show what goes wrong with it.
GUIDE_TEMPLATE_AS_WRITTEN = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}"
    "Human: {{ message['content'] }}\n\n"
    "{% elif message['role'] == 'assistant' %}"
    "Assistant: {{ message['content'] }}\n\n"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}"
    "Assistant: "
    "{% endif %}"
)

TEMPLATES = {"guide": GUIDE_TEMPLATE, "guide-as-written": GUIDE_TEMPLATE_AS_WRITTEN}


def use_template(tokenizer: Any, name: str = "guide") -> Any:
    """Set one of the course's chat templates on a tokenizer and return it."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown chat template {name!r}; choose one of {sorted(TEMPLATES)}")
    tokenizer.chat_template = TEMPLATES[name]
    return tokenizer


def render(tokenizer: Any, messages: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """Render a conversation to the exact text the model sees."""
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


def loss_tokens(tokenizer: Any, messages: list[dict[str, str]]) -> list[tuple[str, bool]]:
    """Tokenize a conversation and mark which tokens carry loss under assistant-only training."""
    enc = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, return_assistant_tokens_mask=True
    )
    pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"])
    return [(p, bool(m)) for p, m in zip(pieces, enc["assistant_masks"])]
