"""Where the client finds Ray's auth token (Ray's loader order), without any cluster."""

import pytest

from fishr_tune.auth import find_token, refused
from fishr_tune.errors import UserError


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    """No token in the environment and an empty HOME."""
    for var in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    return monkeypatch


def test_no_token_anywhere_is_none(clean_env):
    assert find_token() is None


def test_token_order_is_env_value_then_env_path_then_home_file(clean_env, tmp_path):
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("home-token\n")
    assert find_token() == ("home-token", str(tmp_path / ".ray" / "auth_token"))
    (tmp_path / "tok").write_text("  path-token \n")
    clean_env.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "tok"))
    assert find_token() == ("path-token", f"RAY_AUTH_TOKEN_PATH={tmp_path / 'tok'}")
    clean_env.setenv("RAY_AUTH_TOKEN", "env-token")
    assert find_token() == ("env-token", "RAY_AUTH_TOKEN")


def test_token_path_to_a_missing_or_empty_file_is_a_user_error(clean_env, tmp_path):
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("home-token")
    clean_env.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "missing"))
    with pytest.raises(UserError, match="RAY_AUTH_TOKEN_PATH=.*missing is not a file"):
        find_token()  # never silently falls back to ~/.ray/auth_token
    (tmp_path / "empty").write_text("\n")
    clean_env.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "empty"))
    with pytest.raises(UserError, match="is empty"):
        find_token()


def test_refusals_name_the_token_source_and_the_fix():
    missing = str(refused("http://h:8265", None, 401))
    assert "requires an auth token" in missing and "RAY_AUTH_TOKEN" in missing
    wrong = str(refused("http://h:8265", "RAY_AUTH_TOKEN", 403))
    assert "refused the auth token from RAY_AUTH_TOKEN (HTTP 403)" in wrong
    assert "\n" not in missing + wrong


@pytest.fixture
def fake_dashboard():
    """A loopback HTTP server answering /api/authentication_mode as the test sets it."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    reply = {"status": 200, "body": b""}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(reply["status"])
            self.end_headers()
            self.wfile.write(reply["body"])

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", reply
    server.shutdown()


def test_headers_follow_the_clusters_mode(fake_dashboard, clean_env):
    from fishr_tune.auth import auth_headers, cluster_auth_mode

    url, reply = fake_dashboard
    reply["body"] = b'{"authentication_mode": "disabled"}'
    clean_env.setenv("RAY_AUTH_TOKEN", "tok")
    assert auth_headers(url) == ({}, None)  # never sent to a cluster without auth
    reply["body"] = b'{"authentication_mode": "token"}'
    assert auth_headers(url) == ({"Authorization": "Bearer tok"}, "RAY_AUTH_TOKEN")
    clean_env.delenv("RAY_AUTH_TOKEN")
    with pytest.raises(UserError, match="requires an auth token and none was found"):
        auth_headers(url)
    reply["status"] = 404  # a dashboard older than token auth
    assert cluster_auth_mode(url) == "disabled"
    reply["status"], reply["body"] = 200, b"<html>not ray</html>"
    with pytest.raises(UserError, match="is not a Ray dashboard"):
        cluster_auth_mode(url)
    reply["status"] = 500
    with pytest.raises(UserError, match="answered HTTP 500"):
        cluster_auth_mode(url)
