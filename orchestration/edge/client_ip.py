"""Which address a request comes from, for the ``ip`` rate-limit scope.

The socket peer is the client unless the peer is a trusted proxy
(``GATEWAY_TRUSTED_PROXIES``: IPs or CIDRs). Only then is ``X-Forwarded-For``
read, right to left, skipping trusted hops: the first untrusted address is the
client. Anything a client writes sits to the left of what our proxies append, so
a spoofed header can never move a client to a fresh bucket.

IPv6 clients are bucketed by their /64: one subscriber usually holds a whole
/64 and could otherwise rotate through addresses to escape the limit.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_ip(text: str) -> IpAddress | None:
    """An address from a header or REMOTE_ADDR; ports and brackets tolerated."""
    text = text.strip().strip('"')
    if text.startswith("["):  # [2001:db8::1]:443
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:  # 203.0.113.9:5678
        text = text.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientIpResolver:
    def __init__(self, trusted_proxies: Iterable[str] = ()) -> None:
        networks: list[IpNetwork] = []
        for entry in trusted_proxies:
            if entry.strip():
                try:
                    networks.append(ipaddress.ip_network(entry.strip(), strict=False))
                except ValueError:
                    raise ValueError(f"GATEWAY_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR") from None
        self._trusted = tuple(networks)

    def is_trusted(self, address: IpAddress) -> bool:
        return any(address in network for network in self._trusted)

    def client_ip(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address as text (the raw peer when it does not parse)."""
        address = parse_ip(peer)
        if address is None:
            return peer or "unknown"
        if not self.is_trusted(address) or not forwarded_for:
            return str(address)
        for hop in reversed(forwarded_for.split(",")):
            hop_address = parse_ip(hop)
            if hop_address is None:  # garbage: stop at the last hop a trusted proxy vouched for
                break
            address = hop_address
            if not self.is_trusted(address):
                break
        return str(address)


def ip_bucket(ip: str) -> str:
    """The rate-limit subject for an address: itself, or its /64 for IPv6."""
    address = parse_ip(ip)
    if isinstance(address, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address) if address is not None else ip
