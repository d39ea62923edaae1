"""Token usage and its cost as metrics: what `item.usage()` and `task.usage()` record.

Tokens are recorded as `input_tokens`, `output_tokens`, `tokens` (input plus output) and, when
there are any, `cache_read_tokens` and `cache_write_tokens` (parts of the input, as in
genai-prices and OpenAI); the cost as `cost_usd`, a money metric by the core's one rule, so it
is every display's `cost`. A model no price table knows gets its tokens recorded, no cost (never
a silent $0), and one warning a run.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Set, Union

from . import prices
from .errors import InvalidValueError

if TYPE_CHECKING:
    from .task import Task

__all__ = ["TokenUsage", "record", "usage_of"]

MAX_COUNT = 2**53 - 1
COST = "cost_usd"

#: The models already warned about, per run (its context), so a warning comes once a run.
_warned: weakref.WeakKeyDictionary[Any, Set[str]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class TokenUsage:
    """Token counts read from an LLM response, in milepost's (genai-prices') terms: input
    includes the cached parts."""

    model: Optional[str]
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


def record(
    add: Callable[[str, Union[int, float]], None],
    task: Task,
    model: Any,
    provider: Any,
    counts: tuple[Any, Any, Any, Any],
) -> Optional[float]:
    """Checks everything, prices it, then adds the metrics through `add` (an item's or a
    task's `metric`): bad input raises before anything is counted. Returns the cost, or None."""
    _check_name("model", model)
    if provider is not None:
        _check_name("provider", provider)
    names = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
    inp, out, read, write = (_count(name, value) for name, value in zip(names, counts, strict=True))
    if read + write > inp:
        raise InvalidValueError(
            f"cache_read_tokens ({read}) + cache_write_tokens ({write}) are parts of input_tokens ({inp}) "
            "and cannot exceed it: pass the whole input as input_tokens"
        )
    cost = prices.cost(model, provider, inp, out, read, write)
    add("input_tokens", inp)
    add("output_tokens", out)
    add("tokens", inp + out)
    if read:
        add("cache_read_tokens", read)
    if write:
        add("cache_write_tokens", write)
    if cost is not None:
        add(COST, cost)
    else:  # after the counts: a run that ended refused them, and warns of nothing
        _warn_once(task, model)
    return cost


def usage_of(response: Any) -> TokenUsage:
    """The token usage of an OpenAI or Anthropic response, or of a stream's final usage chunk
    or event; duck-typed (attributes or dict keys), no SDK imported.

    OpenAI chat completions: `usage.prompt_tokens` (cached included), `completion_tokens`,
    `prompt_tokens_details.cached_tokens`. OpenAI responses: `usage.input_tokens`,
    `output_tokens`, `input_tokens_details.cached_tokens` (a stream's `response.completed`
    event carries the response). Anthropic: `usage.input_tokens` (cache excluded, so added
    here), `output_tokens`, `cache_read_input_tokens`, `cache_creation_input_tokens`.

    Raises:
        InvalidValueError: the object carries no token usage.
    """
    holder = response
    usage = _get(holder, "usage")
    for wrapper in ("response", "message"):  # stream events: responses' completed, Anthropic's start
        if usage is None and _get(holder, wrapper) is not None:
            holder = _get(holder, wrapper)
            usage = _get(holder, "usage")
    if usage is None:
        raise InvalidValueError(f"no token usage in {type(response).__name__} (no `usage`)")
    model = _get(holder, "model")
    model = model if isinstance(model, str) and model else None
    if _has(usage, "prompt_tokens"):  # OpenAI chat completions
        cached = _n(_get(_get(usage, "prompt_tokens_details"), "cached_tokens"))
        return TokenUsage(model, _n(_get(usage, "prompt_tokens")), _n(_get(usage, "completion_tokens")), cached)
    read = _n(_get(usage, "cache_read_input_tokens"))
    write = _n(_get(usage, "cache_creation_input_tokens"))
    if read or write or _has(usage, "cache_read_input_tokens"):  # Anthropic: input excludes the cache
        inp = _n(_get(usage, "input_tokens")) + read + write
        return TokenUsage(model, inp, _n(_get(usage, "output_tokens")), read, write)
    cached = _n(_get(_get(usage, "input_tokens_details"), "cached_tokens"))  # OpenAI responses
    return TokenUsage(model, _n(_get(usage, "input_tokens")), _n(_get(usage, "output_tokens")), cached)


def _get(obj: Any, name: str) -> Any:
    if obj is None:
        return None
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _has(obj: Any, name: str) -> bool:
    return name in obj if isinstance(obj, dict) else hasattr(obj, name)


def _n(value: Any) -> int:
    """An SDK's count: None (not reported) is 0; the rest is checked when recorded."""
    return 0 if value is None else value


def _check_name(what: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise InvalidValueError(f"{what} must be a non-empty string, got {value!r}")


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidValueError(f"{name} must be an int, got {value!r}")
    if not 0 <= value <= MAX_COUNT:
        raise InvalidValueError(f"{name} must be from 0 to 2**53 - 1, got {value!r}")
    return value


def _warn_once(task: Task, model: str) -> None:
    warned = _warned.setdefault(task.context, set())
    if model in warned:
        return
    warned.add(model)
    task.log(
        f"no price for model {model!r}: its tokens are recorded, its cost is not. Give one with "
        f"milepost.set_prices({{{model!r}: {{'input': ..., 'output': ...}}}}) (USD per million tokens) "
        "or install genai-prices (pip install 'milepost[llm]')",
        level="warning",
        source="milepost",
    )
