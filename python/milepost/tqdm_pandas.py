"""`tqdm.pandas()`: `progress_apply` and `progress_map` on pandas objects, each call of the
function counted on a bar (tqdm's own pattern: the methods are added to pandas' classes)."""

from __future__ import annotations

from typing import Any, Callable, Dict

__all__ = ["register"]


def register(bar_class: Any, bar_kwargs: Dict[str, Any]) -> None:
    import pandas as pd
    from pandas.core.groupby.generic import DataFrameGroupBy, SeriesGroupBy

    def rows_or_columns(df: Any, kwargs: Dict[str, Any]) -> int:
        return int(df.shape[0] if kwargs.get("axis", 0) in (1, "columns") else df.shape[1])

    pd.Series.progress_apply = _counted(bar_class, bar_kwargs, "apply", lambda s, kw: len(s))
    pd.Series.progress_map = _counted(bar_class, bar_kwargs, "map", lambda s, kw: len(s))
    pd.DataFrame.progress_apply = _counted(bar_class, bar_kwargs, "apply", rows_or_columns)
    pd.DataFrame.progress_map = _counted(bar_class, bar_kwargs, "map", lambda df, kw: int(df.size))
    for group in (DataFrameGroupBy, SeriesGroupBy):
        group.progress_apply = _counted(bar_class, bar_kwargs, "apply", lambda g, kw: int(g.ngroups))


def _counted(
    bar_class: Any, bar_kwargs: Dict[str, Any], method: str, total_of: Callable[[Any, Dict[str, Any]], int]
) -> Any:
    def progress(self: Any, func: Any, *args: Any, **kwargs: Any) -> Any:
        if not callable(func):  # `series.map(a_dict)`: nothing is called, nothing to count
            return getattr(self, method)(func, *args, **kwargs)
        with bar_class(total=total_of(self, kwargs), **bar_kwargs) as bar:

            def call(*a: Any, **k: Any) -> Any:
                try:
                    return func(*a, **k)
                finally:
                    bar.update(1)

            return getattr(self, method)(call, *args, **kwargs)

    progress.__name__ = f"progress_{method}"
    return progress
