"""Which addresses an image fetch may connect to.

Loopback, private, link-local (cloud metadata), multicast, reserved and other non-global
addresses are refused unless ``images.allow_networks`` contains them. IPv6 addresses that
carry an IPv4 address are judged by that IPv4 address too, with the same rules:

- IPv4-mapped ``::ffff:a.b.c.d`` and IPv4-compatible ``::a.b.c.d``: by the IPv4 address alone
  (the IPv6 form is only a notation for it);
- NAT64 ``64:ff9b::/96`` (the last 32 bits), 6to4 ``2002::/16`` (bits 16-48) and Teredo
  ``2001::/32`` (server, and client with its bits inverted): by both addresses;
- the local-use NAT64 prefix ``64:ff9b:1::/48`` (RFC 8215), whose embedding depends on the
  operator's prefix length, is refused unless allowed.
"""

from __future__ import annotations

import ipaddress

from workers.images.errors import ImageRefused

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")


def embedded_ipv4(addr: Address) -> tuple[list[ipaddress.IPv4Address], bool]:
    """The IPv4 addresses ``addr`` carries, and whether ``addr`` is only a notation for them."""
    if not isinstance(addr, ipaddress.IPv6Address):
        return [], False
    if addr.ipv4_mapped is not None:
        return [addr.ipv4_mapped], True
    if int(addr) >> 32 == 0 and int(addr) > 1:  # ::a.b.c.d, not :: or ::1
        return [ipaddress.IPv4Address(int(addr))], True
    if addr in _NAT64:
        return [ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)], False
    if addr.sixtofour is not None:
        return [addr.sixtofour], False
    if addr.teredo is not None:
        return list(addr.teredo), False
    return [], False


def _public(addr: Address) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr in _NAT64_LOCAL:
        return False
    return addr.is_global and not addr.is_multicast


def check_address(ip: str, allow: list[str]) -> None:
    """Refuse ``ip`` unless it (and every IPv4 address it embeds) is public or allowed."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise ImageRefused(f"address {ip!r} is not an IP address") from None
    networks: list[Network] = [ipaddress.ip_network(net, strict=False) for net in allow]

    def allowed(a: Address) -> bool:
        return any(a.version == net.version and a in net for net in networks)

    if allowed(addr):
        return
    inner, notation = embedded_ipv4(addr)
    judged: list[Address] = [*inner] if notation else [addr, *inner]
    for candidate in judged:
        if not allowed(candidate) and not _public(candidate):
            via = "" if candidate == addr else f" (it carries {candidate})"
            raise ImageRefused(
                f"address {ip} is not public (loopback/private/link-local/multicast){via}"
            )
