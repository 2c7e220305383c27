"""Which address is the client: the peer, or the right-most untrusted hop behind trusted proxies."""

import pytest

from shared.config import HearthSettings
from shared.context import ADDRESS_MAX_LENGTH, client_address, parse_networks

GATEWAY = parse_networks("10.0.0.0/8, ::1")


def test_forwarded_for_is_ignored_when_no_proxy_is_trusted():
    assert client_address("203.0.113.9", ["198.51.100.1"], ()) == "203.0.113.9"


def test_forwarded_for_is_ignored_from_a_peer_that_is_not_a_trusted_proxy():
    assert client_address("203.0.113.9", ["198.51.100.1"], GATEWAY) == "203.0.113.9"


def test_right_most_untrusted_hop_is_the_client_and_spoofed_left_hops_are_ignored():
    for spoofed in ("1.1.1.1", "2.2.2.2, 3.3.3.3", "x" * 500):
        assert client_address("10.0.0.2", [f"{spoofed}, 198.51.100.7, 10.0.0.3"], GATEWAY) == "198.51.100.7"


def test_several_forwarded_for_headers_are_one_list():
    assert client_address("10.0.0.2", ["9.9.9.9", "198.51.100.7"], GATEWAY) == "198.51.100.7"


def test_garbage_right_of_the_client_stops_at_the_last_good_hop():
    assert client_address("10.0.0.2", ["198.51.100.7, not-an-ip"], GATEWAY) == "10.0.0.2"
    assert client_address("10.0.0.2", ["a" * 200], GATEWAY) == "10.0.0.2"


def test_addresses_are_normalized_and_never_longer_than_the_column():
    assert client_address("::ffff:203.0.113.9", [], ()) == "203.0.113.9"
    assert client_address("10.0.0.2", ["[2001:DB8:0:0:0:0:0:1]:443"], GATEWAY) == "2001:db8::1"
    assert client_address("10.0.0.2", ["198.51.100.7:5123"], GATEWAY) == "198.51.100.7"
    assert client_address("fe80::1%eth0", [], ()) == "fe80::1"
    assert len(client_address("y" * 300, [], ())) == ADDRESS_MAX_LENGTH


def test_only_trusted_hops_gives_the_left_most_hop():
    assert client_address("10.0.0.2", ["10.0.0.9, 10.0.0.3"], GATEWAY) == "10.0.0.9"


def test_a_bad_trusted_proxies_setting_stops_start_up():
    with pytest.raises(ValueError):
        HearthSettings(trusted_proxies="10.0.0.0/8, gateway")
    assert HearthSettings(trusted_proxies="10.0.0.0/8, 192.168.1.5").trusted_proxies
