"""The client's address: the peer, or what X-Forwarded-For says when the peer is one of
TRUSTED_PROXIES.

uvicorn's own proxy-header handling trusts loopback by default, which lets any local
process pick its address per request; it is turned off wherever uvicorn is started
(`--no-proxy-headers`), so this is the only place the header is read."""

import ipaddress
from functools import lru_cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@lru_cache(maxsize=8)
def parse_proxies(spec: str) -> tuple[Network, ...]:
    """'10.0.0.1, 172.16.0.0/12' -> networks (config.py refuses malformed ones at start-up)."""
    return tuple(ipaddress.ip_network(part.strip(), strict=False) for part in spec.split(",") if part.strip())


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def _trusted(addr: Address | None, proxies: tuple[Network, ...]) -> bool:
    return addr is not None and any(addr in net for net in proxies)


def client_address(peer: str | None, forwarded_for: str | None, proxies: tuple[Network, ...]) -> str:
    """Walks X-Forwarded-For from the right while the hop is a trusted proxy: the first
    address that is not is the client (entries before it are the client's own claims)."""
    addr = _address(peer or "")
    if addr is None:
        return (peer or "unknown")[:64]
    if not forwarded_for or not _trusted(addr, proxies):
        return str(addr)
    for hop in reversed(forwarded_for.split(",")[-32:]):
        hop_addr = _address(hop)
        if hop_addr is None:
            return str(addr)  # garbage from beyond the last proxy: the last known hop
        addr = hop_addr
        if not _trusted(addr, proxies):
            break
    return str(addr)
