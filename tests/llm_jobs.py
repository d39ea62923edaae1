"""LLM jobs as users write them: the `openai` and `anthropic` SDKs' async clients, pointed at
the fake model server on 127.0.0.1, generating one persona an item."""

from __future__ import annotations

from typing import Any, Dict

import anthropic
import openai

import milepost
from milepost.fake_model import FakeModelServer

SYSTEM = "You write short personas for a survey of city and village life."
#: USD per million tokens: cached input at a tenth of the input price, cache writes at 1.25x.
PRICES: Dict[str, Dict[str, float]] = {
    "fake-gpt": {"input": 2.0, "output": 8.0, "cache_read": 0.2},
    "fake-claude": {"input": 3.0, "output": 15.0, "cache_read": 0.3, "cache_write": 3.75},
}


def openai_client(server: FakeModelServer) -> openai.AsyncOpenAI:
    # The SDK's own retries off: milepost's `retries=` are the ones counted.
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="not-a-key", max_retries=0)


def anthropic_client(server: FakeModelServer) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=server.base_url.removesuffix("/v1"), api_key="not-a-key", max_retries=0)


def persona_prompt(i: Any) -> str:
    return f"persona {i}"


def gpt_persona(client: openai.AsyncOpenAI, system: bool = True):
    """An async function generating persona `i` with a streamed chat completion."""

    async def generate(i: Any) -> str:
        item = milepost.current_item()
        messages = [{"role": "user", "content": persona_prompt(i)}]
        if system:
            messages.insert(0, {"role": "system", "content": SYSTEM})
        stream = await client.chat.completions.create(
            model="fake-gpt", messages=messages, stream=True, stream_options={"include_usage": True}
        )
        text, last = [], None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
                item.stream(chunk.choices[0].delta.content)
            last = chunk
        item.usage_from(last)
        return "".join(text)

    return generate


def claude_persona(client: anthropic.AsyncAnthropic):
    async def generate(i: Any) -> str:
        item = milepost.current_item()
        messages = [{"role": "user", "content": persona_prompt(i)}]
        async with client.messages.stream(model="fake-claude", system=SYSTEM, messages=messages, max_tokens=200) as s:
            async for text in s.text_stream:
                item.stream(text)
            message = await s.get_final_message()
        item.usage_from(message)
        return "".join(block.text for block in message.content)

    return generate
