"""Which web pages may change the API server's state, and the request limits' messages (plain logic)."""

from __future__ import annotations

import pytest

from GPT_SoVITS.infer.safety import OriginPolicy, RequestLimitError, RequestLimits

SERVER = ("127.0.0.1", 9880)


@pytest.mark.parametrize(("headers", "server", "allowed"), [
    ({}, SERVER, True),  # scripts, api_v2 clients
    ({"origin": "http://127.0.0.1:9880"}, SERVER, True),
    ({"origin": "http://LOCALHOST:9880"}, SERVER, True),
    ({"origin": "http://[::1]:9880"}, SERVER, True),
    ({"referer": "http://localhost:9880/docs#/default"}, SERVER, True),
    ({"origin": "http://192.168.1.5:9880"}, ("192.168.1.5", 9880), True),  # bound to 0.0.0.0, reached by LAN IP
    ({"origin": "http://localhost:9880"}, ("192.168.1.5", 9880), False),
    ({"origin": "http://evil.example:9880"}, SERVER, False),  # DNS rebinding: the name is not the address
    ({"origin": "https://127.0.0.1:9880"}, SERVER, True),
    ({"origin": "http://127.0.0.1"}, SERVER, False),  # port 80
    ({"origin": "null"}, SERVER, False),
    ({"sec-fetch-site": "cross-site"}, SERVER, False),
    ({"sec-fetch-site": "same-site"}, SERVER, False),  # another port of localhost, e.g. another local web app
    ({"sec-fetch-site": "same-origin"}, SERVER, True),
    ({"origin": "http://127.0.0.1:9880"}, None, False),
])
def test_same_origin_and_header_rules(headers: dict, server, allowed: bool) -> None:
    assert (OriginPolicy().refusal(headers, server) is None) == allowed


def test_allowed_origins_are_normalised_and_bad_ones_refused() -> None:
    policy = OriginPolicy.of(["https://Studio.Example/", "http://10.0.0.2:8080"])
    assert policy.allowed == ("https://studio.example:443", "http://10.0.0.2:8080")
    assert policy.refusal({"origin": "https://studio.example"}, SERVER) is None
    assert policy.refusal({"referer": "http://10.0.0.2:8080/app"}, SERVER) is None
    refusal = policy.refusal({"origin": "http://10.0.0.2:8081"}, SERVER)
    assert refusal is not None and "--allow-origin http://10.0.0.2:8081" in refusal
    for bad in ("studio.example", "ftp://x.example", "http://"):
        with pytest.raises(ValueError, match="--allow-origin"):
            OriginPolicy.of([bad])


def test_limits_name_the_value_the_limit_and_the_flag() -> None:
    limits = RequestLimits(max_body_bytes=10, max_text_chars=3, max_sentences=2, max_references=1)
    limits.check_body(10)
    limits.check_text("abc")
    limits.check_sentences(2, "cut5")
    limits.check_references(1)
    checks = [(lambda: limits.check_body(11), "11 bytes; the limit is 10 bytes", "--max-body-bytes"),
              (lambda: limits.check_text("abcd", "input"), "input is 4 characters long", "--max-text-chars"),
              (lambda: limits.check_sentences(3, "cut1"), "3 sentences with cut1", "--max-sentences"),
              (lambda: limits.check_references(2), "2 reference audios", "--max-references")]
    for check, fragment, flag in checks:
        with pytest.raises(RequestLimitError) as info:
            check()
        assert fragment in str(info.value) and flag in str(info.value)
