"""The CDN helpers: tag headers a CDN can split safely, and the purge call's outcomes."""

from __future__ import annotations

import pytest

from orchestration.edge.cdn import CdnPurgeFailed, CdnPurger, cdn_headers
from tests.support.fake_downstream import free_port, start_fake_downstream, stop_fake_downstream


def test_headers_encode_separators_and_control_characters() -> None:
    headers = cdn_headers(["catalog", "sku:a b,c", "x\r\nSet-Cookie: y", "catalog", ""], 120)
    assert headers == {
        "Cache-Control": "public, max-age=120, s-maxage=120",
        "Surrogate-Key": "catalog sku:a%20b%2Cc x%0D%0ASet-Cookie:%20y",
        "Cache-Tag": "catalog,sku:a%20b%2Cc,x%0D%0ASet-Cookie:%20y",
    }
    assert cdn_headers([], 5) == {"Cache-Control": "public, max-age=5, s-maxage=5"}


def test_purge_posts_the_tags_with_the_token_and_fails_unless_2xx() -> None:
    answers = iter([(503, {}), (200, {})])
    cdn = start_fake_downstream({"/purge": lambda _h: next(answers)})
    try:
        purger = CdnPurger(cdn.url + "/purge", "t0ken")
        with pytest.raises(CdnPurgeFailed, match="503"):
            purger.purge(["catalog", "sku:a b"])
        assert purger.purge(["catalog", "sku:a b"]) == 2
    finally:
        stop_fake_downstream(cdn)
    assert cdn.hits["/purge"] == 2
    assert all(h["authorization"] == "Bearer t0ken" for h in cdn.headers["/purge"])


def test_an_unreachable_cdn_is_a_purge_failure() -> None:
    with pytest.raises(CdnPurgeFailed, match="ConnectError"):
        CdnPurger(f"http://127.0.0.1:{free_port()}/purge", timeout_s=2).purge(["catalog"])
