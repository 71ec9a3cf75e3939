from gateway.config import CandidateFilter
from gateway.webrtc.ice_filter import select_addresses

ADDRS = [
    ("lo", "127.0.0.1"),
    ("lo", "::1"),
    ("eth0", "192.0.2.5"),
    ("eth0", "2001:db8::5"),
    ("docker0", "172.17.0.1"),
    ("wg0", "10.8.0.2"),
]


def test_default_is_every_non_loopback_address() -> None:
    chosen = select_addresses(CandidateFilter(), ADDRS, True, True)
    assert chosen == ["192.0.2.5", "2001:db8::5", "172.17.0.1", "10.8.0.2"]


def test_interfaces_restrict() -> None:
    rules = CandidateFilter(interfaces=("eth0",), ipv6=False)
    assert select_addresses(rules, ADDRS, True, True) == ["192.0.2.5"]


def test_loopback_only_when_named() -> None:
    rules = CandidateFilter(addresses=("127.0.0.1",))
    assert select_addresses(rules, ADDRS, True, True) == ["127.0.0.1"]


def test_named_loopback_alias_not_on_an_interface_is_offered() -> None:
    rules = CandidateFilter(addresses=("127.0.0.2",))
    assert select_addresses(rules, ADDRS, True, True) == ["127.0.0.2"]
