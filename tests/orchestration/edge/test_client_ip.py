"""The client address behind the ``ip`` scope; X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import pytest

from orchestration.edge.client_ip import ClientIpResolver, ip_bucket

PROXIES = ClientIpResolver(["10.0.0.0/8", "192.0.2.1"])


def test_untrusted_peer_ignores_forwarded_for() -> None:
    assert PROXIES.client_ip("203.0.113.7", "1.2.3.4") == "203.0.113.7"


def test_trusted_proxy_gives_the_rightmost_untrusted_hop() -> None:
    # A client-written first entry ("1.2.3.4") never wins over what our proxies appended.
    assert PROXIES.client_ip("10.1.1.1", "1.2.3.4, 203.0.113.7, 10.2.2.2") == "203.0.113.7"


def test_single_trusted_ip_entry() -> None:
    assert PROXIES.client_ip("192.0.2.1", "198.51.100.5") == "198.51.100.5"


def test_all_hops_trusted_gives_the_leftmost() -> None:
    assert PROXIES.client_ip("10.0.0.1", "10.0.0.9, 10.0.0.8") == "10.0.0.9"


def test_garbage_from_a_proxy_stops_at_the_last_vouched_hop() -> None:
    assert PROXIES.client_ip("10.0.0.1", "203.0.113.7, not-an-ip") == "10.0.0.1"


def test_trusted_peer_without_header_is_the_client() -> None:
    assert PROXIES.client_ip("10.0.0.1", None) == "10.0.0.1"


@pytest.mark.parametrize(
    ("peer", "expected"),
    [("::ffff:203.0.113.7", "203.0.113.7"), ("[2001:db8::1]:443", "2001:db8::1"), ("203.0.113.7:5678", "203.0.113.7")],
)
def test_addresses_are_normalised(peer: str, expected: str) -> None:
    assert ClientIpResolver().client_ip(peer, None) == expected


def test_bad_trusted_proxy_entry_is_a_configuration_error() -> None:
    with pytest.raises(ValueError, match="'nope'"):
        ClientIpResolver(["nope"])


def test_ipv6_bucket_is_the_64() -> None:
    assert ip_bucket("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert ip_bucket("203.0.113.7") == "203.0.113.7"
