"""The fault proxy the outage tests rely on really produces each fault."""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pytest

from tests.faultproxy import FaultProxy


@pytest.fixture
def proxy(es_url):
    parts = urlsplit(es_url)
    with FaultProxy(parts.hostname or "127.0.0.1", parts.port or 9200) as p:
        yield p


def get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.status, resp.read()


def test_pass_forwards_to_the_server(proxy):
    status, body = get(proxy.url + "/")
    assert status == 200 and "version" in json.loads(body)
    assert proxy.seen["pass"] == 1


def test_refuse_means_nothing_listens_until_switched_back(proxy):
    proxy.set_mode("refuse")
    with pytest.raises(urllib.error.URLError) as exc:
        get(proxy.url + "/")
    assert isinstance(exc.value.reason, ConnectionRefusedError)
    proxy.set_mode("pass")
    assert get(proxy.url + "/")[0] == 200


def test_reset_resets_the_connection(proxy):
    proxy.set_mode("reset")
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected,
                        urllib.error.URLError)):
        get(proxy.url + "/")
    assert proxy.seen["reset"] == 1


def test_hang_never_answers(proxy):
    proxy.set_mode("hang")
    with pytest.raises((TimeoutError, socket.timeout, urllib.error.URLError)):
        get(proxy.url + "/", timeout=0.5)


@pytest.mark.parametrize("status", [429, 503])
def test_http_mode_answers_every_request_with_the_status(proxy, status):
    proxy.set_mode(f"http:{status}")
    for _ in range(2):
        req = urllib.request.Request(proxy.url + "/_bulk", data=b'{"create":{}}\n{}\n',
                                     method="POST")
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=5)
        assert exc.value.code == status
        assert json.loads(exc.value.read())["status"] == status


def test_leaving_pass_aborts_keep_alive_connections(proxy):
    parts = urlsplit(proxy.url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
    conn.request("GET", "/")
    assert conn.getresponse().read()
    proxy.set_mode("http:503")
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.request("GET", "/")
        conn.getresponse().read()
    conn.close()
