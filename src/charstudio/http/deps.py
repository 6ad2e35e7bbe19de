"""What API routes and studio pages depend on, as named ``Annotated`` aliases: the services,
the job queue, the token check. Everything is built once by
:func:`charstudio.server.create_app` and kept on ``app.state``; tests build their own app
around their own services.

The dependencies are ``async def`` although they never await: they do no I/O, and FastAPI
would otherwise run each one in its thread pool — three thread hops per request.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated, ParamSpec, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from charstudio.errors import InvalidParameter, Unauthorized
from charstudio.jobs import JobQueue
from charstudio.services import Services

__all__ = [
    "MAX_OFFSET",
    "MIN_TOKEN_LENGTH",
    "Limit",
    "Offset",
    "QueueDep",
    "ServicesDep",
    "check_token_strength",
    "read_now",
    "require_token",
]

MIN_TOKEN_LENGTH = 16

_bearer = HTTPBearer(auto_error=False, description="The token in <home>/api_token.")


async def get_services(request: Request) -> Services:
    services = request.app.state.services
    assert isinstance(services, Services)
    return services


async def get_queue(request: Request) -> JobQueue:
    queue = request.app.state.queue
    assert isinstance(queue, JobQueue)
    return queue


async def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Every route but ``/health`` needs ``Authorization: Bearer <token>``."""
    if credentials is None:
        raise Unauthorized(
            "missing API token: send 'Authorization: Bearer <token>' (the token is in "
            "<home>/api_token, or set CHARSTUDIO_API_TOKEN)"
        )
    expected: str = request.app.state.token
    try:
        check_token_strength(expected)
    except InvalidParameter as exc:
        raise Unauthorized(str(exc)) from exc
    if not hmac.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise Unauthorized("wrong API token: use the one in <home>/api_token")


P = ParamSpec("P")
T = TypeVar("T")


async def read_now(
    services: Services, read: Callable[P, T], *args: P.args, **kwargs: P.kwargs
) -> T:
    """Run a short database read: on the event loop when the library is a SQLite file, in
    the thread pool otherwise.

    A read of the local SQLite file in WAL mode never waits for a writer and takes less
    than a millisecond, less than the hop to a thread and back costs under load
    (``bench/api.py``); a database across the network may make the loop wait for a round
    trip, so its reads keep the thread pool. Writes always go to the thread pool: they can
    wait for another process's transaction.
    """
    if services.db.engine.dialect.name == "sqlite":
        return read(*args, **kwargs)
    return await run_in_threadpool(read, *args, **kwargs)


def check_token_strength(token: str) -> str:
    """Return ``token`` if it is long enough to guard the API and the studio.

    An empty token file would make the empty password log into the studio, so ``serve``
    refuses to start, the studio refuses logins and the API refuses every request with
    one shorter than :data:`MIN_TOKEN_LENGTH` characters.

    Raises:
        InvalidParameter: the token is empty or too short, with how to make a good one.
    """
    if len(token.strip()) < MIN_TOKEN_LENGTH:
        raise InvalidParameter(
            f"the API token is {'empty' if not token.strip() else 'too short'} "
            f"({len(token.strip())} characters; at least {MIN_TOKEN_LENGTH} are needed): "
            "delete <home>/api_token and run `charstudio init` to write a new random one, "
            "or set CHARSTUDIO_API_TOKEN to a long random value "
            "(python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


ServicesDep = Annotated[Services, Depends(get_services)]
QueueDep = Annotated[JobQueue, Depends(get_queue)]
# SQLite's INTEGER is a signed 64-bit number: 2**63 given to it raises OverflowError (a 500)
# before any query runs, so every integer from a request is bounded here, at the door.
MAX_OFFSET = 1_000_000_000
Limit = Annotated[int, Query(ge=1, le=200, description="Items per page.")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]
