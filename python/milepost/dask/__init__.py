"""milepost across machines with Dask (`pip install milepost[dask]`).

`map` and `as_completed` run items on a Dask cluster, each counted where it runs. Importing
this package also lets any task handed to a Dask task (`client.submit(work, phase)`) reach its
run from a worker that cannot map the run's shared memory: the run's handles then carry a
route over Dask's event stream (see `link.py`, and the README's "Across machines with Dask").
"""

from __future__ import annotations

try:
    import distributed  # noqa: F401 - the extra this package needs
except ImportError as e:  # pragma: no cover - exercised without the extra only
    raise ImportError("milepost.dask needs Dask's distributed scheduler: pip install 'milepost[dask]'") from e

from ..workers import ROUTE_FINDERS
from .link import DaskLink, connect, find_route
from .maps import as_completed, map
from .progress import progress

__all__ = ["DaskLink", "as_completed", "connect", "map", "progress"]

if find_route not in ROUTE_FINDERS:
    ROUTE_FINDERS.append(find_route)
