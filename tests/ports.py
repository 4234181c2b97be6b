"""Free TCP ports on 127.0.0.1 for tests, never the same one twice in a test session."""
import socket

_handed_out = set()


def find_free_port(host="127.0.0.1"):
    """A TCP port free on ``host`` now, never one handed out before in this test session."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((host, 0))
            port = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
