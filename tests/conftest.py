import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch

# The suite's networks are tiny: one thread avoids oversubscribing a shared 2-core machine.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seeded():
    torch.manual_seed(0)


class _Files(BaseHTTPRequestHandler):
    """Serves server.routes: path -> (body, the Content-Length to announce)."""

    def do_GET(self) -> None:
        if self.path not in self.server.routes:
            self.send_error(404)
            return
        body, length = self.server.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # keep the test output clean
        pass


@pytest.fixture
def server():
    """A file server on 127.0.0.1 for the download tests; it stops with the test."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    httpd.routes = {}
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
