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
