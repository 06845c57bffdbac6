"""No published key is ever accepted: without JWT_KEYS a real server process signs with a random key it
generated in its data directory (mode 0600), keeps it across restarts, and says so loudly."""

from __future__ import annotations

import json
import stat
import time
import urllib.error
import urllib.request

import jwt
import pytest

from config import ConfigError, load_settings
from config.signing_key import with_signing_key
from tests.servers import AppProcess

# The key this repository once shipped as the built-in development default, with the kids it was
# used under: a token signed with it must be refused.
PUBLISHED = "dev-only-signing-key-change-me-0123456789"


def call(url: str, method: str = "GET", body: dict | None = None, token: str | None = None):
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data, headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null")


def forged(kid: str, key: str = PUBLISHED) -> str:
    now = int(time.time())
    claims = {
        "sub": "mallory",
        "role": "host",
        "name": "Mallory",
        "scope": "access",
        "iss": "webinar-server",
        "aud": "webinar",
        "iat": now,
        "exp": now + 10 * 365 * 86400,
        "jti": "forged",
    }
    return jwt.encode(claims, key, algorithm="HS256", headers={"kid": kid})


def test_default_mode_refuses_the_published_key_and_keeps_its_own(mongo_server, test_id, tmp_path):
    data = tmp_path / "data"
    env = {"MONGODB_URL": mongo_server.url, "MONGODB_DATABASE": test_id, "DATA_DIR": str(data)}
    app = AppProcess({**env, "JWT_KEYS": None})
    app.start()
    try:
        for kid in ("dev", "k1", "local"):
            code, body = call(app.url + "/api/me", token=forged(kid))
            assert code == 401, (kid, body)
        signup = {"email": "keep@example.com", "password": "correct horse battery", "name": "K"}
        code, account = call(app.url + "/api/auth/signup", "POST", signup)
        assert code == 201, account
        token = account["access_token"]
        assert call(app.url + "/api/me", token=token)[0] == 200
        key_file = data / "signing-key"
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert len(key_file.read_text().strip()) >= 32
        assert app.stop() == 0
        output = app.output()
        assert "SECURITY: JWT_KEYS is not set" in output and str(key_file) in output
        assert key_file.read_text().strip() not in output

        app.start()  # a restart keeps the key: the token issued before still works
        assert call(app.url + "/api/me", token=token)[0] == 200
    finally:
        app.stop()
        app.logfile.close()


def test_published_keys_are_refused_in_every_mode(tmp_path):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    for mode in ("development", "production"):
        for keys in (f"dev:{PUBLISHED}", "k1:replace-me"):
            with pytest.raises(ConfigError, match="is published"):
                load_settings({"MODE": mode, "JWT_KEYS": keys}, toml_path=empty)
    with pytest.raises(ConfigError, match="is published"):
        load_settings({"API_KEYS": "crm:replace-me"}, toml_path=empty)


def test_generated_key_is_shared_by_processes_of_one_data_directory(tmp_path):
    """Two starts on one DATA_DIR, as two processes of one host: one key, private to its owner."""
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    settings = load_settings({"DATA_DIR": str(tmp_path / "d"), "JWT_KEYS": ""}, toml_path=empty)
    first, second = with_signing_key(settings), with_signing_key(settings)
    assert first.jwt_keys == second.jwt_keys and len(first.jwt_keys) == 1
    assert PUBLISHED not in repr(first)
    other = with_signing_key(settings.replace(data_dir=str(tmp_path / "other")))
    assert other.jwt_keys != first.jwt_keys


def test_a_short_key_in_development_is_warned_about(tmp_path, caplog):
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    settings = load_settings({"JWT_KEYS": "k1:short"}, toml_path=empty)
    with caplog.at_level("WARNING", logger="config"):
        assert with_signing_key(settings) is settings
    assert "SECURITY: JWT_KEYS key 'k1' is shorter than 32 characters" in caplog.text
