"""Secrets never survive redaction: URL positions, literal values, encoded forms, log events."""

from __future__ import annotations

import string

import httpx
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from sentinel_signl4.redact import MASK, Redactor, redact_text, redact_url, reveal


def test_webhook_team_secret_path_segment_is_masked() -> None:
    assert redact_url("https://connect.signl4.com/webhook/96sbq49u") == "https://connect.signl4.com/webhook/***"


def test_events_api_team_secret_is_masked_and_query_survives() -> None:
    url = "https://connect.signl4.com/api/v2/events/teamsecret?ExtIdParam=Id"
    assert redact_url(url) == "https://connect.signl4.com/api/v2/events/***?ExtIdParam=Id"


def test_userinfo_password_is_masked() -> None:
    assert redact_url("https://alice:hunter2@proxy.example:8080/x") == "https://alice:***@proxy.example:8080/x"


def test_credential_like_query_parameters_are_masked_but_paging_cursors_kept() -> None:
    url = ("https://h/p?api-version=2025-09-01&x-s4-api-key=K1&code=C2&sig=S3&client_secret=S4"
           "&access_token=T5&$skipToken=page2")
    redacted = redact_url(url)
    for secret in ("K1", "C2", "S3", "S4", "T5"):
        assert secret not in redacted
    assert "api-version=2025-09-01" in redacted
    assert "$skipToken=page2" in redacted


def test_httpx_url_objects_are_accepted() -> None:
    assert redact_url(httpx.URL("https://h/webhook/abc?token=t")) == "https://h/webhook/***?token=***"


def test_free_text_bearer_tokens_and_embedded_urls_are_masked() -> None:
    text = "sent Authorization: Bearer eyJ0eXAi.abc.def to https://h/webhook/s3cr3t and failed"
    redacted = redact_text(text)
    assert "eyJ0eXAi" not in redacted
    assert "s3cr3t" not in redacted
    assert "Bearer ***" in redacted


def test_redactor_masks_literal_and_url_encoded_secrets() -> None:
    redactor = Redactor(["a+b/c=", None, ""])
    text = "raw a+b/c= quoted a%2Bb%2Fc%3D"
    assert redactor.redact(text) == f"raw {MASK} quoted {MASK}"


def test_redactor_accepts_secret_str_and_never_shows_values_in_its_repr() -> None:
    redactor = Redactor([SecretStr("topsecret-value")])
    assert redactor.redact("x topsecret-value y") == f"x {MASK} y"
    assert "topsecret" not in repr(redactor)
    assert redactor.contains_secret("..topsecret-value..")


def test_longer_secrets_are_masked_whole() -> None:
    redactor = Redactor(["abcd", "abcdefgh"])
    assert redactor.redact("abcdefgh") == MASK


def test_structlog_processor_redacts_nested_values() -> None:
    redactor = Redactor(["hunter2-secret"])
    event = {"event": "failed with hunter2-secret", "ctx": {"url": "https://h/webhook/zzz", "list": ["hunter2-secret"]},
             "error": RuntimeError("boom hunter2-secret"), "count": 3}
    out = redactor(None, "info", event)
    assert "hunter2-secret" not in repr(out)
    assert "zzz" not in repr(out)
    assert out["count"] == 3


def test_reveal_unwraps_secret_str() -> None:
    assert reveal(SecretStr("v")) == "v"
    assert reveal("plain") == "plain"
    assert reveal(None) is None


_SECRET_ALPHABET = string.ascii_letters + string.digits + "+/=-_.~!$&'()"


@given(secret=st.text(alphabet=_SECRET_ALPHABET, min_size=6, max_size=40),
       before=st.text(max_size=30), after=st.text(max_size=30))
def test_a_registered_secret_never_survives_in_any_text(secret: str, before: str, after: str) -> None:
    redacted = Redactor([secret]).redact(before + secret + after)
    assert secret not in redacted


@given(secret=st.text(alphabet=string.ascii_letters + string.digits + "-_.~", min_size=1, max_size=40))
def test_any_webhook_secret_is_masked_in_its_url(secret: str) -> None:
    assert secret not in redact_url(f"https://connect.signl4.com/webhook/{secret}").split("/webhook/")[1]
