"""The suite's network guard: tests reach 127.0.0.1 and nothing else."""

import socket

import pytest


def test_a_connection_off_this_machine_is_refused():
    with pytest.raises(ConnectionRefusedError, match=r"tests never leave 127\.0\.0\.1"), \
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.connect(("192.0.2.1", 443))


def test_loopback_is_allowed():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        with socket.create_connection(server.getsockname(), timeout=2):
            pass
