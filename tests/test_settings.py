import pytest

from config import ConfigError, Secret, load_settings
from config.settings import PUBLISHED_KEYS, configuration_table


def load(tmp_path, env=None, toml=""):
    path = tmp_path / "server.toml"
    path.write_text(toml)
    return load_settings(env or {}, toml_path=path)


def test_defaults_are_usable(tmp_path):
    s = load(tmp_path)
    assert s.port == 8888
    assert s.base_url == "http://127.0.0.1:8888"
    assert s.jwt_algorithm == "HS256"
    assert not s.redis_url and not s.mongodb_url


@pytest.mark.parametrize(
    "env,name",
    [
        ({"PORT": "eighty"}, "PORT"),
        ({"PORT": "70000"}, "PORT"),
        ({"MODE": "staging"}, "MODE"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"MONGODB_URL": "postgres://x"}, "MONGODB_URL"),
        ({"JWT_ALGORITHM": "none"}, "JWT_ALGORITHM"),
        ({"JWT_KEYS": "a:"}, "JWT_KEYS"),
        ({"SIGNUP_OPEN": "maybe"}, "SIGNUP_OPEN"),
        ({"WS_PING_INTERVAL": "-1"}, "WS_PING_INTERVAL"),
        ({"REMINDER_OFFSETS": "15,-5"}, "REMINDER_OFFSETS"),
        ({"TRUSTED_PROXIES": "10.0.0.0/33"}, "TRUSTED_PROXIES"),
        ({"TRUSTED_PROXIES": "nginx"}, "TRUSTED_PROXIES"),
        ({"CORS_ORIGINS": "ftp://files.example.com"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "https://app.example.com/page"}, "CORS_ORIGINS"),
        ({"CORS_ORIGINS": "https://app.example.com:99999"}, "CORS_ORIGINS"),
        ({"TLS_CERT": "/nonexistent/cert.pem", "TLS_KEY": "/nonexistent/key.pem"}, "TLS_CERT"),
        ({"TLS_KEY": "/etc/hostname"}, "TLS_CERT"),
        ({"HTTP_IDLE_TIMEOUT": "0"}, "HTTP_IDLE_TIMEOUT"),
        ({"PUBLISH_RATE": "-1"}, "PUBLISH_RATE"),
        ({"METRICS_PORT": "metrics"}, "METRICS_PORT"),
        ({"METRICS_PORT": "8888"}, "METRICS_PORT"),
        ({"METRICS_ALLOW": "10.0.0.0/33"}, "METRICS_ALLOW"),
        ({"METRICS_ALLOW": "intranet"}, "METRICS_ALLOW"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(tmp_path, env, name):
    with pytest.raises(ConfigError) as err:
        load(tmp_path, env)
    message = str(err.value)
    assert message.startswith(f"{name}:")
    assert "\n" not in message


def test_production_refuses_default_and_short_keys(tmp_path):
    with pytest.raises(ConfigError, match="JWT_KEYS: production needs its own keys"):
        load(tmp_path, {"MODE": "production"})
    with pytest.raises(ConfigError, match="shorter than 32"):
        load(tmp_path, {"MODE": "production", "JWT_KEYS": "k1:short"})
    s = load(tmp_path, {"MODE": "production", "JWT_KEYS": "k2:" + "x" * 40 + ",k1:" + "y" * 40})
    assert s.signing_kid == "k2"
    assert s.effective_log_format == "json"


def test_secrets_never_appear_in_repr(tmp_path):
    s = load(
        tmp_path,
        {
            "JWT_KEYS": "k1:supersecretvalue1234567890",
            "REDIS_URL": "redis://:hunter2@127.0.0.1:6379/0",
        },
    )
    text = repr(s) + str(s)
    assert "supersecretvalue" not in text and "hunter2" not in text
    assert not any(key in repr(load(tmp_path)) for key in PUBLISHED_KEYS)
    assert repr(Secret("abc")) == "Secret('**********')"


def test_toml_file_and_environment_precedence(tmp_path):
    s = load(tmp_path, {"PORT": "9001"}, toml='port = 9000\nlog_level = "debug"\n')
    assert s.port == 9001 and s.log_level == "debug"
    with pytest.raises(ConfigError, match="unknown setting 'prot'"):
        load(tmp_path, toml="prot = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, toml="port = \n")


def test_missing_config_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="CONFIG_FILE"):
        load_settings({"CONFIG_FILE": str(tmp_path / "nope.toml")})


def test_configuration_table_lists_every_variable():
    table = configuration_table()
    for name in (
        "MONGODB_URL",
        "REDIS_URL",
        "JWT_KEYS",
        "ALLOWED_ORIGINS",
        "DATA_DIR",
        "LOG_LEVEL",
    ):
        assert f"`{name}`" in table


def test_readme_documents_every_setting():
    from pathlib import Path

    from config.settings import FIELDS

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [f.env for f in FIELDS if f"`{f.env}`" not in readme]
    assert missing == [], f"README configuration table lacks {missing}; run python -m config.settings"


def test_a_misspelled_setting_is_a_type_error(tmp_path):
    """Every setting is typed: mypy rejects ``settings.prot`` and a setting used as the wrong type."""
    import subprocess
    import sys
    from pathlib import Path

    snippet = (
        "from config import Settings\n"
        "def port(s: Settings) -> int:\n"
        "    return s.prot\n"
        "def host(s: Settings) -> int:\n"
        "    return s.host\n"
    )
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file=", "--cache-dir", str(tmp_path), "-c", snippet],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in run.stdout.splitlines() if line.startswith("<string>:")]
    assert len(errors) == 2, run.stdout + run.stderr
    assert errors[0].startswith("<string>:3:") and '"Settings" has no attribute "prot"' in errors[0]
    assert errors[1].startswith("<string>:5:") and '(got "str", expected "int")' in errors[1]


def test_secure_default_settings_parse(tmp_path):
    s = load(
        tmp_path,
        {
            "TRUSTED_PROXIES": "10.0.0.0/8, ::1, 192.168.1.7",
            "CORS_ORIGINS": "https://app.example.com, http://localhost:3000/",
        },
    )
    assert [str(n) for n in s.trusted_proxies] == ["10.0.0.0/8", "::1/128", "192.168.1.7/32"]
    assert s.cors_origins == ("https://app.example.com", "http://localhost:3000/")
    defaults = load(tmp_path)
    assert defaults.trusted_proxies == () and defaults.cors_origins == () and not defaults.tls_cert
