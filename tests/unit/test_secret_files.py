"""``${file:/run/secrets/name}``: Docker and Kubernetes secret files, trailing newline stripped, errors naming the
key and the file, never the content."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_config import MINIMAL

from sentinel_signl4.config import ConfigError, parse_config
from sentinel_signl4.config.interpolate import interpolate


def config_with_secret_file(path: Path | str) -> str:
    return MINIMAL.replace('client_secret = "${SECRET}"', 'client_secret = "${file:' + str(path) + '}"')


def test_secret_file_content_without_its_trailing_newline(tmp_path: Path) -> None:
    secret = tmp_path / "client_secret"
    secret.write_text("s3cr3t-from-file\n", encoding="utf-8")
    cfg = parse_config(config_with_secret_file(secret), env={})
    value = cfg.connectors[0].azure.credential.client_secret
    assert value is not None and value.get_secret_value() == "s3cr3t-from-file"
    assert "s3cr3t-from-file" in cfg.secrets() and "s3cr3t-from-file" not in repr(cfg)


def test_only_trailing_newlines_are_stripped(tmp_path: Path) -> None:
    secret = tmp_path / "s"
    secret.write_bytes(b"  spaced value\t\r\n\n")
    # (the config schema itself then strips surrounding whitespace from every string)
    assert interpolate({"k": "a${file:" + str(secret) + "}b"}, {}) == {"k": "a  spaced value\tb"}


def test_missing_file_names_the_key_and_the_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(config_with_secret_file(tmp_path / "absent"), source="c.toml", env={})
    assert (f"c.toml: connectors[0].azure.credential.client_secret: cannot read secret file {tmp_path / 'absent'}: "
            "No such file or directory") in str(info.value)


def test_relative_path_and_unknown_scheme_are_refused() -> None:
    with pytest.raises(ConfigError) as relative:
        parse_config(config_with_secret_file("secrets/x"), source="c.toml", env={})
    assert "secret file 'secrets/x' must be an absolute path" in str(relative.value)
    with pytest.raises(ConfigError) as unknown:
        parse_config(MINIMAL.replace("${SECRET}", "${vault:x}"), source="c.toml", env={})
    assert "unknown reference ${vault:…}; known: file, keyvault" in str(unknown.value)


def test_lowercase_environment_variables_with_defaults_still_work() -> None:
    cfg = parse_config(MINIMAL.replace("${SECRET}", "${secret:-fallback-value}"), env={})
    value = cfg.connectors[0].azure.credential.client_secret
    assert value is not None and value.get_secret_value() == "fallback-value"
