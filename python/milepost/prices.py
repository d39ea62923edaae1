"""What tokens cost: the user's own prices first, then genai-prices' table.

Prices are USD per million tokens. Input tokens follow genai-prices' `Usage` (and OpenAI's
`prompt_tokens`): `input_tokens` is all the input, and `cache_read_tokens` and
`cache_write_tokens` are the parts of it read from or written to the prompt cache, each priced
at its own rate. genai-prices is an optional extra (`milepost[llm]`), imported on the first
price it is asked for, never by `import milepost`.
"""

from __future__ import annotations

import json
import math
import os
import sys
import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Dict, Mapping, Optional, Union

from .errors import InvalidValueError

__all__ = ["Price", "clear", "cost", "load", "set_prices"]

KINDS = ("input", "output", "cache_read", "cache_write")


@dataclass(frozen=True)
class Price:
    """A model's prices in USD per million tokens; cached input defaults to the input price
    (a missing cache price never makes cached tokens free)."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal


_lock = threading.Lock()
_user: Dict[str, Price] = {}


def load(source: Union[Mapping[str, Any], str, os.PathLike[str]]) -> None:
    """Adds the user's prices, which come before genai-prices' for the models they name.

    Args:
        source: `{model: {"input": 2.5, "output": 10, "cache_read": 1.25, "cache_write": 3.75}}`
            (USD per million tokens; `input` and `output` required), or the path of a TOML or
            JSON file holding the same (a table per model).

    Raises:
        InvalidValueError: the file does not parse, or a price is missing or not a number
            of zero or more; the message names the file, the model and the price.
    """
    where = ""
    if isinstance(source, (str, os.PathLike)):
        where = f"price file {os.fspath(source)!r}: "
        source = _read(os.fspath(source), where)
    if not isinstance(source, Mapping):
        raise InvalidValueError(f"{where}prices must be a mapping of model name to prices, got {type(source).__name__}")
    parsed = {_model(model, where): _price(model, prices, where) for model, prices in source.items()}
    with _lock:
        _user.update(parsed)


set_prices = load


def clear() -> None:
    """Forgets the user's prices (genai-prices' table stays)."""
    with _lock:
        _user.clear()


def cost(
    model: str, provider: Optional[str], input: int, output: int, cache_read: int, cache_write: int
) -> Optional[float]:
    """The USD cost of these tokens, or None when no table knows the model (never a guess)."""
    with _lock:
        price = _user.get(model)
    if price is not None:
        plain = input - cache_read - cache_write
        total = plain * price.input + output * price.output
        total += cache_read * price.cache_read + cache_write * price.cache_write
        return float(total / 1_000_000)
    return _genai_cost(model, provider, input, output, cache_read, cache_write)


def _genai_cost(model: str, provider: Optional[str], inp: int, out: int, read: int, write: int) -> Optional[float]:
    try:
        import genai_prices
    except ImportError:
        return None
    usage = genai_prices.Usage(input_tokens=inp, output_tokens=out, cache_read_tokens=read, cache_write_tokens=write)
    try:
        calc = genai_prices.calc_price(usage, model_ref=model, provider_id=provider)
    except LookupError:
        return None
    return float(calc.total_price)


def _read(path: str, where: str) -> Any:
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if path.lower().endswith(".json"):
            return json.loads(raw)
        return _toml().loads(raw.decode("utf-8"))
    except InvalidValueError:
        raise
    except (OSError, ValueError) as e:  # JSON's, TOML's and UTF-8's errors are ValueErrors
        raise InvalidValueError(f"{where}{type(e).__name__}: {e}") from e


def _toml() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:
        import tomli
    except ImportError:
        raise InvalidValueError(
            "TOML price files need Python 3.11 or `pip install tomli`; JSON works anywhere"
        ) from None
    return tomli


def _model(model: Any, where: str) -> str:
    if not isinstance(model, str) or not model.strip():
        raise InvalidValueError(f"{where}a model name must be a non-empty string, got {model!r}")
    return model


def _price(model: str, prices: Any, where: str) -> Price:
    if not isinstance(prices, Mapping):
        raise InvalidValueError(f"{where}prices of {model!r} must be a table of {', '.join(KINDS)}, got {prices!r}")
    unknown = set(prices) - set(KINDS)
    if unknown:
        raise InvalidValueError(
            f"{where}unknown price {sorted(unknown)[0]!r} for {model!r}: prices are {', '.join(KINDS)}"
        )
    for kind in ("input", "output"):
        if kind not in prices:
            raise InvalidValueError(f"{where}{model!r} has no {kind!r} price (USD per million tokens)")
    got = {kind: _usd(model, kind, prices[kind], where) for kind in KINDS if kind in prices}
    return Price(
        input=got["input"],
        output=got["output"],
        cache_read=got.get("cache_read", got["input"]),
        cache_write=got.get("cache_write", got["input"]),
    )


def _usd(model: str, kind: str, value: Any, where: str) -> Decimal:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value >= 0
    if not ok:
        raise InvalidValueError(f"{where}{kind} price of {model!r} must be a number of zero or more, got {value!r}")
    # Through str: 0.1 is the price written, not its binary neighbour.
    return Decimal(str(value))
