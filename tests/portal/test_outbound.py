"""portal/outbound.py against real servers on 127.0.0.1: what is refused, when, and that the checked
address is the one connected to."""
import socket

import pytest
import requests
from pytest_httpserver import HTTPServer

from portal import outbound
from portal.outbound import OutboundRefused, address_refusal, outbound_session


@pytest.fixture
def no_loopback(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = []


@pytest.fixture
def loopback_allowed(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]


@pytest.mark.parametrize("ip, reason", [
    ("10.0.0.1", "private"), ("172.16.5.4", "private"), ("192.168.1.1", "private"),
    ("100.64.0.1", "shared"), ("127.0.0.1", "loopback"), ("169.254.169.254", "link-local"),
    ("0.0.0.0", "unspecified"), ("224.0.0.1", "multicast"), ("240.0.0.1", "reserved"),
    ("::1", "loopback"), ("fe80::1", "link-local"), ("fc00::1", "private"), ("::", "unspecified"),
    ("::ffff:10.0.0.1", "private"), ("ff02::1", "multicast"),
])
def test_non_public_addresses_are_refused(no_loopback, ip, reason):
    assert reason in address_refusal(ip)


TEREDO_CLIENT_10_0_0_1 = "2001:0:4136:e378:8000:63bf:f5ff:fffe"  # server 65.54.227.120, client obfuscated (inverted)
TEREDO_CLIENT_8_8_8_8 = "2001:0:4136:e378:8000:63bf:f7f7:f7f7"


@pytest.mark.parametrize("ip, reason", [
    ("2002:a9fe:a9fe::1", "the 6to4 form of 169.254.169.254, a link-local address"),
    ("2002:7f00:1::1", "the 6to4 form of 127.0.0.1, a loopback address"),
    ("2002:a00:1::1", "the 6to4 form of 10.0.0.1, a private address"),
    (TEREDO_CLIENT_10_0_0_1, "the Teredo form of 10.0.0.1, a private address"),
    (TEREDO_CLIENT_8_8_8_8, "a Teredo tunnel address"),
    ("64:ff9b::a9fe:a9fe", "the NAT64 form of 169.254.169.254, a link-local address"),
    ("64:ff9b::7f00:1", "the NAT64 form of 127.0.0.1, a loopback address"),
    ("64:ff9b::a00:1", "the NAT64 form of 10.0.0.1, a private address"),
    ("64:ff9b:1::808:808", "a local-use NAT64 address"),
    ("::7f00:1", "the IPv4-compatible form of 127.0.0.1, a loopback address"),
    ("::a9fe:a9fe", "the IPv4-compatible form of 169.254.169.254, a link-local address"),
    ("::808:808", "a deprecated IPv4-compatible address"),
    ("::ffff:0:a00:1", "the IPv4-translated form of 10.0.0.1, a private address"),
    ("::ffff:a9fe:a9fe", "the IPv4-mapped form of 169.254.169.254, a link-local address"),
    ("fec0::1", "a site-local address"),
    ("3fff::1", "a documentation address"),
    ("5f00::1", "a segment-routing address"),
])
def test_ipv6_forms_of_internal_addresses_are_refused(no_loopback, ip, reason):
    assert address_refusal(ip) == f"it is {reason}"


@pytest.mark.parametrize("ip", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111",
                                "64:ff9b::808:808", "2002:808:808::1"])  # NAT64 (DNS64) and 6to4 of public addresses
def test_public_addresses_are_allowed(no_loopback, ip):
    assert address_refusal(ip) is None


def test_allow_list_exempts_its_networks(settings):
    settings.OUTBOUND_ALLOWED_NETWORKS = ["10.1.0.0/16"]
    assert address_refusal("10.1.2.3") is None
    assert "private" in address_refusal("10.2.0.1")


@pytest.mark.parametrize("url, ip", [
    ("http://10.0.0.1/hook", "10.0.0.1"),
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
    ("https://[::1]/x", "::1"),
])
def test_literal_private_addresses_are_refused_before_any_packet(no_loopback, monkeypatch, url, ip):
    def no_socket(*args, **kwargs):
        raise AssertionError("a socket was opened")

    monkeypatch.setattr(outbound, "_open_socket", no_socket)
    with pytest.raises(OutboundRefused) as info:
        outbound_session(timeout=2).get(url)
    assert info.value.ip == ip


@pytest.mark.parametrize("url, ip, reason", [
    ("http://[2002:a9fe:a9fe::1]/latest/meta-data/", "2002:a9fe:a9fe::1", "the 6to4 form of 169.254.169.254"),
    ("http://[64:ff9b::a9fe:a9fe]/latest/meta-data/", "64:ff9b::a9fe:a9fe", "the NAT64 form of 169.254.169.254"),
    (f"http://[{TEREDO_CLIENT_10_0_0_1}]:8080/hook", TEREDO_CLIENT_10_0_0_1, "the Teredo form of 10.0.0.1"),
    ("https://[::ffff:169.254.169.254]/", "::ffff:a9fe:a9fe", "the IPv4-mapped form of 169.254.169.254"),
    ("http://[::127.0.0.1]:6379/", "::7f00:1", "the IPv4-compatible form of 127.0.0.1"),
    ("http://[fec0::1]/", "fec0::1", "a site-local address"),
])
def test_ipv6_literals_carrying_internal_addresses_are_refused_before_any_lookup(no_loopback, monkeypatch, url, ip, reason):
    def no_network(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(outbound, "_open_socket", no_network)
    with pytest.raises(OutboundRefused) as info:
        outbound_session(timeout=2).get(url)
    assert info.value.ip == ip and reason in info.value.reason


def test_a_name_resolving_to_loopback_is_refused(no_loopback, httpserver):
    httpserver.expect_request("/hook").respond_with_data("reached")
    url = httpserver.url_for("/hook").replace("127.0.0.1", "localhost").replace("[::1]", "localhost")
    with pytest.raises(OutboundRefused) as info:
        outbound_session(timeout=2).post(url, data=b"{}")
    assert info.value.host == "localhost"
    assert "loopback" in str(info.value)
    assert httpserver.log == []


def test_loopback_is_reached_when_allowed(loopback_allowed, httpserver):
    httpserver.expect_request("/hook", method="POST").respond_with_data("ok")
    response = outbound_session(timeout=2).post(httpserver.url_for("/hook"), data=b"{}")
    assert response.status_code == 200 and response.text == "ok"


def test_redirects_are_not_followed(loopback_allowed, httpserver):
    httpserver.expect_request("/start").respond_with_data("", status=302, headers={"Location": "http://169.254.169.254/"})
    httpserver.expect_request("/next").respond_with_data("followed")
    response = outbound_session(timeout=2).get(httpserver.url_for("/start"), allow_redirects=True)
    assert response.status_code == 302
    assert [request.path for request, _ in httpserver.log] == ["/start"]


def test_environment_proxies_are_ignored(loopback_allowed, httpserver, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("http_proxy", "http://10.9.9.9:3128")
    httpserver.expect_request("/hook").respond_with_data("direct")
    assert outbound_session(timeout=2).get(httpserver.url_for("/hook")).text == "direct"


def test_every_request_has_a_timeout(loopback_allowed, httpserver, monkeypatch):
    seen = {}
    original = requests.adapters.HTTPAdapter.send

    def send(self, request, **kwargs):
        seen["timeout"] = kwargs["timeout"]
        return original(self, request, **kwargs)

    monkeypatch.setattr(requests.adapters.HTTPAdapter, "send", send)
    httpserver.expect_request("/hook").respond_with_data("ok")
    outbound_session(timeout=3.5).get(httpserver.url_for("/hook"))
    assert seen["timeout"] == 3.5


def _fake_getaddrinfo(answers, calls):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host != "rebind.example":
            return real(host, port, family, type, proto, flags)
        calls.append(host)
        ip = answers[min(len(calls), len(answers)) - 1]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))]

    return getaddrinfo


def test_dns_rebinding_connects_to_the_checked_address(settings, httpserver, monkeypatch):
    """First answer allowed (127.0.0.1 stands in for a public address), later answers 127.0.0.2 (stands in for
    a private one, where nothing listens). Delivery reaches the server: the socket used the first answer, and
    there was exactly one lookup."""
    settings.OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.1/32"]
    calls = []
    monkeypatch.setattr(socket, "getaddrinfo", _fake_getaddrinfo(["127.0.0.1", "127.0.0.2"], calls))
    httpserver.expect_request("/hook").respond_with_data("ok")
    url = f"http://rebind.example:{httpserver.port}/hook"
    assert outbound_session(timeout=2).get(url).text == "ok"
    assert calls == ["rebind.example"]
    assert httpserver.log[0][0].headers["Host"] == f"rebind.example:{httpserver.port}"


def test_dns_rebinding_to_a_private_address_never_connects_there(no_loopback, monkeypatch):
    calls, connected = [], []
    monkeypatch.setattr(socket, "getaddrinfo", _fake_getaddrinfo(["93.184.216.34", "127.0.0.1"], calls))

    def record(infos, *args):
        connected.extend(sockaddr[0] for *_, sockaddr in infos)
        raise ConnectionRefusedError("test: not really connecting")

    monkeypatch.setattr(outbound, "_open_socket", record)
    with pytest.raises(requests.ConnectionError):
        outbound_session(timeout=2).get("http://rebind.example/hook")
    assert calls == ["rebind.example"]
    assert connected == ["93.184.216.34"]


def test_one_private_answer_among_public_ones_refuses(no_loopback, monkeypatch):
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host != "mixed.example":
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
                (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.7", port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with pytest.raises(OutboundRefused) as info:
        outbound_session(timeout=2).get("http://mixed.example/")
    assert info.value.ip == "10.0.0.7" and "private" in info.value.reason


@pytest.fixture
def demo_receiver_at_httpserver(no_loopback, settings, httpserver):
    """The demo's configuration (no loopback allowed, the demo receiver on) with httpserver as the portal."""
    settings.DEMO_RECEIVER_ENABLED = True
    settings.PORTAL_BASE_URL = httpserver.url_for("/").rstrip("/")
    httpserver.expect_request("/demo/receiver/dev-env", method="POST").respond_with_data("accepted", status=202)
    return httpserver


def test_the_demo_receiver_is_reached_on_the_portals_own_address(demo_receiver_at_httpserver):
    response = outbound_session(timeout=2).post(demo_receiver_at_httpserver.url_for("/demo/receiver/dev-env"), data=b"{}")
    assert response.status_code == 202 and response.text == "accepted"


def post_refused(url):
    with pytest.raises(OutboundRefused, match="loopback"):
        outbound_session(timeout=2).post(url, data=b"{}")


@pytest.mark.parametrize("path", [
    "/v1/blueprints",  # the portal's own API
    "/demo/slack/chat.postMessage",
    "/demo/receiver/../../v1/blueprints",
    "/demo/receiver/%2e%2e/%2e%2e/admin/",
    "/demo/receiver/dev-env/extra",
])
def test_only_the_demo_receiver_is_reached_on_the_portals_address(demo_receiver_at_httpserver, path):
    receiver = demo_receiver_at_httpserver.url_for("/demo/receiver/dev-env")
    assert outbound_session(timeout=2).post(receiver, data=b"{}").status_code == 202
    post_refused(demo_receiver_at_httpserver.url_for("/").rstrip("/") + path)
    assert [request.path for request, _ in demo_receiver_at_httpserver.log] == ["/demo/receiver/dev-env"]


def test_the_demo_receiver_path_on_another_port_or_when_off_is_refused(demo_receiver_at_httpserver, settings):
    receiver = demo_receiver_at_httpserver.url_for("/demo/receiver/dev-env")
    assert outbound_session(timeout=2).post(receiver, data=b"{}").status_code == 202
    other = HTTPServer(host="127.0.0.1")
    other.expect_request("/demo/receiver/dev-env").respond_with_data("other")
    other.start()
    try:
        post_refused(other.url_for("/demo/receiver/dev-env"))
        assert other.log == []
    finally:
        other.stop()
    settings.DEMO_RECEIVER_ENABLED = False
    post_refused(receiver)
    assert len(demo_receiver_at_httpserver.log) == 1
