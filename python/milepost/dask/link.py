"""A run reached from Dask workers: the route in its task handles, and the run's link.

Workers send with `Worker.log_event` on a topic of the run (`milepost-<run id>`); the scheduler
hands each event to the client that subscribed to it (`Client.subscribe_topic`), on the
client's event loop, where `merge.Merger` takes it in. Both ride connections Dask keeps open
anyway, batched (a worker's events go out with its other scheduler messages); a
`distributed.Queue` costs a round trip to the scheduler per `put` (see the README's figures).
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from typing import Any, Callable, Dict, List, Optional

from ..errors import MilepostError
from ..merge import Merger
from ..owner import Owner
from ..remote import flush, retire

__all__ = ["DaskChannel", "DaskLink", "DaskRoute", "connect", "find_route"]

log = logging.getLogger("milepost")

#: Seconds without a message (workers send one at least every second) before a worker is
#: counted lost, unless the scheduler said so first.
LOST_AFTER = 10.0
#: Seconds between two asks of the scheduler which workers it has.
ASK_EVERY = 1.0
#: Seconds the run's end waits for the workers' last messages.
SETTLE_TIMEOUT = 10.0


class DaskChannel:
    """A worker's way to its run: events on the run's topic."""

    def __init__(self, worker: Any, topic: str) -> None:
        self._worker = worker
        self._topic = topic

    @property
    def source(self) -> str:
        return str(self._worker.address)

    def send(self, message: Dict[str, Any]) -> None:
        # Always queued for the worker's event loop, even from that loop (where `flush` runs):
        # `log_event` sends at once on the loop's thread but queues from any other, and a
        # flush's message then overtook the sending thread's queued one, which the run
        # ignored as late (its rows and events lost).
        self._worker.loop.add_callback(self._worker.log_event, self._topic, message)


class DaskRoute:
    """What a run's task handles carry to reach it from a Dask worker (the topic's name)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic

    def open(self) -> DaskChannel:
        worker = _this_worker()
        if worker is None:
            raise MilepostError(
                f"this process can neither map the run's shared memory nor reach it through Dask "
                f"(topic {self.topic!r}): it is not a Dask worker"
            ) from None
        return DaskChannel(worker, self.topic)

    def reachable(self) -> bool:
        """Whether this process is a Dask worker (a scheduler unpickles task graphs too)."""
        return _this_worker() is not None

    def __reduce__(self) -> Any:
        return (DaskRoute, (self.topic,))


def _this_worker() -> Any:
    """The Dask worker of this process, or None."""
    from distributed import Worker, get_worker

    try:
        return get_worker()
    except ValueError:
        # Task arguments are unpickled before the task runs, off its thread: the worker
        # of this process then (Dask runs one a process, bar in-process test clusters).
        alive = [w for w in Worker._instances if w.status.name not in ("closed", "closing")]  # noqa: SLF001
        return alive[0] if len(alive) == 1 else None


class DaskLink:
    """The run's side: its topic subscribed, messages merged, lost workers noticed."""

    def __init__(self, owner: Owner, client: Any, lost_after: float = LOST_AFTER) -> None:
        self.owner = owner
        self.client = client
        self.lost_after = lost_after
        self.route = DaskRoute(f"milepost-{owner.id}")
        self.merger = Merger(owner)
        self.errors = 0  # merges or checks that raised (logged)
        self._stop = threading.Event()
        client.subscribe_topic(self.route.topic, _forwarder(self))
        self._thread = threading.Thread(target=self._watch, name=f"milepost-dask-{owner.id}", daemon=True)
        self._thread.start()

    def on_event(self, event: Any) -> None:
        """On the client's event loop: one message. Nothing may raise out of here (it would
        end up in the client's logs, the message lost without a count)."""
        try:
            _, message = event
            self.merger.receive(message)
        except Exception:  # noqa: BLE001 - counted and logged, the loop goes on
            self.errors += 1
            log.exception("milepost: a message for run %s could not be merged", self.owner.id)

    def _watch(self) -> None:
        """Notices lost workers: quiet for `lost_after` seconds, or gone from the scheduler."""
        asked = 0.0
        while not self._stop.wait(0.25):
            try:
                for source in self.merger.quiet(self.lost_after):
                    self.merger.lose(source, f"no message for {self.lost_after:g}s")
                if time.monotonic() - asked >= ASK_EVERY:
                    asked = time.monotonic()
                    self._ask_scheduler()
            except Exception:  # noqa: BLE001 - logged; the watch goes on (heartbeats still count)
                self.errors += 1
                log.warning("milepost: checking Dask workers of run %s failed", self.owner.id, exc_info=True)

    def _ask_scheduler(self) -> None:
        if self.client.status != "running":
            return  # reconnecting or closed: asking would wait for Dask's connect timeout
        alive = [s for s, p in list(self.merger.peers.items()) if p.lost is None and "://" in s]
        if not alive:
            return
        # The workers' addresses alone (`scheduler_info()` would bring every worker's metrics).
        workers = set(self.client.nthreads())
        for source in alive:
            if source not in workers:
                self.merger.lose(source, "the scheduler removed it")

    def _ask(self, what: str, call: Callable[[], Any], timeout: float) -> Any:
        """`call()` (a request to the cluster), waited for at most `timeout` seconds: Dask
        retries a lost scheduler for 30 s (its connect timeout). `MilepostError` saying `what`
        could not be asked."""
        if self.client.status != "running":
            raise MilepostError(f"the Dask client is {self.client.status}: its scheduler is gone")
        asked: Dict[str, Any] = {}

        def ask() -> None:
            try:
                asked["answer"] = call()
            except BaseException as e:  # noqa: BLE001 - handed to the caller
                asked["error"] = e

        asking = threading.Thread(target=ask, name=f"milepost-dask-ask-{self.owner.id}", daemon=True)
        asking.start()
        asking.join(timeout)
        if "error" in asked:
            raise MilepostError(f"{what} could not be asked: {asked['error']}") from asked["error"]
        if "answer" not in asked:
            raise MilepostError(f"the Dask scheduler did not answer in {timeout:g}s")
        return asked["answer"]

    def sync(self, timeout: float = SETTLE_TIMEOUT) -> List[str]:
        """Asks every worker to send what it counted now and waits until that is merged; the
        workers whose last message did not arrive in `timeout` seconds. `MilepostError` when
        the scheduler cannot be reached in that time."""
        deadline = time.monotonic() + timeout
        seqs = self._ask("the Dask workers", lambda: self.client.run(flush, self.owner.id, on_error="return"), timeout)
        wanted = {str(k): v for k, v in seqs.items() if isinstance(v, int)}
        return self.merger.wait_for(wanted, max(0.0, deadline - time.monotonic()))

    def forget(self, timeout: float = SETTLE_TIMEOUT) -> None:
        """Has the scheduler drop the messages it keeps of the run's topic (all merged by
        now): Dask keeps a topic's last 1,000 events as long as the scheduler lives, item rows
        and all (78 MB for a run of 300,000 items). Never raises: a scheduler it cannot ask
        keeps them."""
        try:
            self._ask(
                "the Dask scheduler", lambda: self.client.run_on_scheduler(_forgetter(), self.route.topic), timeout
            )
        except Exception:  # noqa: BLE001 - only memory on the scheduler is at stake
            log.debug("milepost: the Dask scheduler kept run %s's messages", self.owner.id, exc_info=True)

    def catch_up(self, ended: bool = False) -> None:
        """`sync`, saying on the run's log which workers' last messages did not come, then
        `forget`; when the run has `ended`, the workers stop sending for it first."""
        missing = self.sync()
        if missing:
            self.merger.note(
                f"no last message from Dask worker(s) {', '.join(missing)}: their last counts may be missing",
                "warning",
            )
        if ended:
            self._retire()
        self.forget()

    def settle(self) -> None:
        """Before the run's counts are final (never raises: what could not be asked is said
        on the run's log)."""
        try:
            self.catch_up(ended=True)
        except Exception as e:  # noqa: BLE001 - the run ends whatever the cluster does
            self.merger.note(f"the Dask workers' last counts could not be asked for: {e}", "warning")
        self.merger.finish()

    def _retire(self) -> None:
        """The workers stop sending for the run (their threads end). Never raises: a worker
        not asked sends on, to a topic no one reads."""
        try:
            self._ask("the Dask workers", lambda: self.client.run(retire, self.owner.id, on_error="return"), 5.0)
        except Exception:  # noqa: BLE001 - said at debug level: the run's counts are settled
            log.debug("milepost: the Dask workers of run %s were not told it ended", self.owner.id, exc_info=True)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not threading.current_thread():
            self._thread.join(2)
        try:
            self.client.unsubscribe_topic(self.route.topic)
        except Exception:  # noqa: BLE001 - a client already closed has no topics left
            pass
        _links.pop(id(self.owner), None)


def _forwarder(link: DaskLink) -> Callable[[Any], None]:
    """The client's handler of the run's topic: it holds the link weakly, as Dask's
    `unsubscribe_topic` keeps the handler (a bound method kept every run of a long-lived client
    alive, ~11 MB a run of 20,000 items)."""
    ref = weakref.ref(link)

    def forward(event: Any) -> None:
        target = ref()
        if target is not None:
            target.on_event(event)

    return forward


def _forgetter() -> Callable[..., bool]:
    """What runs on the scheduler to drop a topic's kept events. Made here, so that it is
    pickled by value: a scheduler need not have milepost installed."""

    def forget(topic: str, dask_scheduler: Any = None) -> bool:
        # Dask has no public call for it: the broker of recent versions, the deque per topic
        # of older ones.
        broker = getattr(dask_scheduler, "_broker", None)
        if broker is not None:
            broker.truncate(topic)
            return True
        events = getattr(dask_scheduler, "events", None)
        if isinstance(events, dict) and topic in events:
            events[topic].clear()
            return True
        return False

    return forget


#: Links by run (its owner's id), while the run lives.
_links: "Dict[int, DaskLink]" = {}
_owners: "weakref.WeakValueDictionary[int, Owner]" = weakref.WeakValueDictionary()


#: One link made at a time: maps started at once from threads made one each (each subscribed
#: the run's topic, Dask kept the last handler, and the others' maps waited 10 s for nothing).
_connecting = threading.Lock()


def connect(owner: Owner, client: Any) -> DaskLink:
    """The run's link to Dask (made, with `client`, on first use): its handles carry the route."""
    with _connecting:
        link = _links.get(id(owner))
        if link is None or _owners.get(id(owner)) is not owner:
            link = _links[id(owner)] = DaskLink(owner, client)
            _owners[id(owner)] = owner
            owner.links.append(link)
            owner.route = link.route
        return link


def find_route(owner: Any) -> Optional[DaskRoute]:
    """A route finder (see `workers.ROUTE_FINDERS`): the run's route when this process has a
    Dask client."""
    if not isinstance(owner, Owner):
        return None
    from distributed import default_client

    try:
        client = default_client()
    except ValueError:
        return None
    return connect(owner, client).route
