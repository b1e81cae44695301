"""Ray's token authentication, seen from a client of the dashboard's HTTP API (Jobs, state).

Ray 2.60 clusters may require a bearer token (``RAY_AUTH_MODE=token`` on the head). Ray's own
clients send one only when their environment also says ``RAY_AUTH_MODE=token``; here the
cluster is asked instead (``/api/authentication_mode`` needs no token), so a user never has to
mirror the head's mode. The token is looked up where Ray's loader looks, in its order.
"""

from __future__ import annotations

import os

from fishr_tune.errors import UserError

TOKEN_ENV = "RAY_AUTH_TOKEN"            # the token itself
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"  # a file holding it
DEFAULT_TOKEN_FILE = os.path.join("~", ".ray", "auth_token")
MODE_ROUTE = "/api/authentication_mode"
HTTP_TIMEOUT_S = 5.0
FIX = (f"set {TOKEN_ENV}, or {TOKEN_PATH_ENV} to a file holding it, or put it in "
       f"{DEFAULT_TOKEN_FILE} (`ray get-auth-token` on the head prints it)")


def find_token() -> tuple[str, str] | None:
    """``(token, where it came from)`` from Ray's usual places, or None when there is none.

    Order as in Ray's token loader: ``RAY_AUTH_TOKEN``, then the file ``RAY_AUTH_TOKEN_PATH``,
    then ``~/.ray/auth_token``. A ``RAY_AUTH_TOKEN_PATH`` naming a missing file is an error
    rather than a silent fall-through to another token.
    """
    if os.environ.get(TOKEN_ENV, "").strip():
        return os.environ[TOKEN_ENV].strip(), TOKEN_ENV
    if os.environ.get(TOKEN_PATH_ENV):
        path = os.path.expanduser(os.environ[TOKEN_PATH_ENV])
        if not os.path.isfile(path):
            raise UserError(f"{TOKEN_PATH_ENV}={path} is not a file: point it at the "
                            "cluster's token file or unset it")
        return _read_token(path), f"{TOKEN_PATH_ENV}={path}"
    path = os.path.expanduser(DEFAULT_TOKEN_FILE)
    if os.path.isfile(path):
        return _read_token(path), path
    return None


def _read_token(path: str) -> str:
    with open(path) as f:
        token = f.read().strip()
    if not token:
        raise UserError(f"the token file {path} is empty: {FIX}")
    return token


def cluster_auth_mode(dashboard_url: str) -> str:
    """``token`` or ``disabled``: what the cluster's dashboard says it requires.

    A dashboard too old to have the route (404) is treated as ``disabled``.
    """
    import requests

    try:
        reply = requests.get(dashboard_url + MODE_ROUTE, timeout=HTTP_TIMEOUT_S)
    except requests.RequestException as exc:
        raise UserError(f"the Ray dashboard at {dashboard_url} does not answer "
                        f"({type(exc).__name__}): check --address (the dashboard's "
                        "http://HOST:8265)") from None
    if reply.status_code == 404:
        return "disabled"
    if not reply.ok:
        raise UserError(f"{dashboard_url}{MODE_ROUTE} answered HTTP {reply.status_code}: is "
                        "--address the Ray dashboard (http://HOST:8265)?")
    try:
        return reply.json().get("authentication_mode", "disabled")
    except ValueError:
        raise UserError(f"{dashboard_url} is not a Ray dashboard (no JSON at {MODE_ROUTE}): "
                        "check --address") from None


def auth_headers(dashboard_url: str) -> tuple[dict, str | None]:
    """HTTP headers for the cluster's API and the token's source (None when none is sent).

    Raises UserError when the cluster requires a token and none can be found.
    """
    if cluster_auth_mode(dashboard_url) != "token":
        return {}, None
    found = find_token()
    if found is None:
        raise UserError(f"the Ray cluster at {dashboard_url} requires an auth token and none "
                        f"was found: {FIX}")
    token, source = found
    return {"Authorization": f"Bearer {token}"}, source


def refused(dashboard_url: str, source: str | None, status: int) -> UserError:
    """The one-line error for a 401/403 answer of the cluster."""
    if source is None or status == 401:
        return UserError(f"the Ray cluster at {dashboard_url} requires an auth token: {FIX}")
    return UserError(f"the Ray cluster at {dashboard_url} refused the auth token from {source} "
                     f"(HTTP {status}): use the cluster's token; {FIX}")
