"""Cancel and Retry from the page. A run of this process is cancelled directly; any other live run
(and a retry of any run) is asked through its live channel, `LiveRun.send`, whose answer is
the answer here. `send` waits for the run's answer (up to 3 s), so it runs on a worker thread,
never on the server's loop."""

from __future__ import annotations

import json
from typing import Optional, Union

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..live.place import LiveError, run_dir
from ..live.reader import LiveRun
from ..persistence.records import RunRecord
from .api import Api
from .guard import own_origin
from .hub import state_of
from .models import CancelAnswer, ErrorAnswer, RetryAnswer
from .openapi import Operation, documented
from .params import RUN_ID

#: What a command to a run can be answered, beside its success.
REFUSALS = {
    403: ("Another Origin, or none", ErrorAnswer),
    404: ("No such run on this machine", ErrorAnswer),
    409: ("The run has ended (the error names how), or cannot be asked this", ErrorAnswer),
    504: ("The run did not answer within 3 s (nothing changed)", ErrorAnswer),
}
ENDED = 409


def _error(message: str, status: int) -> Response:
    return JSONResponse({"error": message}, status_code=status)


class Steering:
    """The Cancel and Retry endpoints, over the runs the `api` shows."""

    def __init__(self, api: Api) -> None:
        self.api = api

    def refusal(self, request: Request, what: str) -> Optional[Response]:
        """With a token, the guard checked it. Without one (loopback), only the dashboard's own
        page may steer a run: the browser sends its Origin, which a page of another site cannot
        send, and a bare request from anything else on the machine does not have."""
        origin = request.headers.get("origin")
        if self.api.token or origin == own_origin(request.scope, request.headers):
            return None
        return _error(f"{what} needs the dashboard's own page (origin {origin!r} is not it) or the token", 403)

    @documented(
        Operation(
            "Cancel a live run: this process's at once, another process's through its live channel (its answer "
            "in `message`). The token, or the dashboard's own Origin: a request without one is refused",
            (RUN_ID,),
            {202: ("Cancel requested", CancelAnswer), **REFUSALS},
        )
    )
    async def cancel(self, request: Request) -> Response:
        refused = self.refusal(request, "cancel")
        if refused is not None:
            return refused
        run_id = request.path_params["run_id"]
        ch = self.api.hub.get(run_id)
        run = ch.run if ch is not None else None
        if ch is not None and (ch.finished or run is None):
            return _error(f"run {ch.name} ({run_id}) has ended ({self._state(run_id)}): nothing changed", ENDED)
        if run is not None:
            run.cancel("from the dashboard")
            return JSONResponse({"cancelled": True, "message": "cancel requested"}, status_code=202)
        answer = await self._send(run_id, "cancel")
        if isinstance(answer, Response):
            return answer
        return JSONResponse({"cancelled": True, "message": answer}, status_code=202)

    @documented(
        Operation(
            "Run a live run's failed items again (those of its running pools), through its live channel: its "
            "answer in `message`. The token, or the dashboard's own Origin, as for cancel",
            (RUN_ID,),
            {202: ("The run's answer", RetryAnswer), **REFUSALS},
        )
    )
    async def retry(self, request: Request) -> Response:
        refused = self.refusal(request, "retry")
        if refused is not None:
            return refused
        answer = await self._send(request.path_params["run_id"], "retry")
        if isinstance(answer, Response):
            return answer
        return JSONResponse({"message": answer}, status_code=202)

    async def _send(self, run_id: str, kind: str) -> Union[str, Response]:
        """The run's answer to `kind` (text), or the error response."""
        target = self._live_run(run_id)
        if target is None:
            return self._not_live(run_id, kind)
        try:
            return await run_in_threadpool(target.send, kind)
        except LiveError as e:
            try:
                state = target.read().state
            except LiveError:
                state = "unreadable"
            return _error(str(e), ENDED if state != "running" else 504)

    def _live_run(self, run_id: str) -> Optional[LiveRun]:
        """The run by its exact id in the live directory, if the server shows it: any there when
        it shows the live directory, else only a run of this process."""
        feed = self.api.feed
        if feed is None and self.api.hub.get(run_id) is None:
            return None
        try:
            directory = run_dir(run_id, feed.root if feed is not None else None)
            return LiveRun(directory) if directory.is_dir() else None
        except LiveError:
            return None

    def _not_live(self, run_id: str, kind: str) -> Response:
        ch = self.api.hub.get(run_id)
        if ch is not None and not ch.finished:
            return _error(
                f"run {ch.name} ({run_id}) keeps no history, so it has no live channel to be asked to {kind} "
                "(Run(history=...) gives it one)",
                ENDED,
            )
        if ch is not None or self._recorded(run_id) is not None:
            return _error(f"run {run_id!r} is not live: it has ended ({self._state(run_id)}); nothing changed", ENDED)
        return _error(f"no run {run_id!r} on this machine: nothing to {kind}", 404)

    def _state(self, run_id: str) -> str:
        """How a run that is not live ended, as the dashboard knows it."""
        ch = self.api.channel(run_id)
        if ch is not None and ch.snapshot_seq:
            return state_of(ch, json.loads(ch.snapshot_json).get("root", {}))
        found = self._recorded(run_id)
        return str(found["status"]) if found is not None else "unknown"

    def _recorded(self, run_id: str) -> Optional[RunRecord]:
        """The history's record of the run with this id (not of a run of this name)."""
        found: Optional[RunRecord] = self.api.read(lambda h: h.find_run(run_id), None)
        return found if found is not None and found["id"] == run_id else None
