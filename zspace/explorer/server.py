"""The explorer's local web server and the handle ``zspace.explore`` returns.

The standard library's ``ThreadingHTTPServer`` on purpose: a local tool for one user
answers a few requests a second, and a framework (Flask, FastAPI + uvicorn) would add
dependencies and a second event loop in notebooks for nothing the page needs. The
server is small enough to hold to these rules, each tested:

- bound to 127.0.0.1 unless asked; another address prints a warning;
- the Host header must name the bound address (or localhost) with its port, so a
  web page on another domain cannot reach it through DNS rebinding (403 otherwise),
  and a request a browser marks as coming from another site (``Sec-Fetch-Site``) is
  refused too;
- files served are read when the server starts, from fixed names in the package:
  a request's path is only a key into that table, never a file system path;
- every error is a status with one line of text; a bug's traceback goes to the log
  (the terminal), never to the browser;
- at most ``MAX_CONNECTIONS`` connections are served at once; the others get 503
  at once instead of waiting in the backlog or piling up threads.
"""

from __future__ import annotations

import ipaddress
import queue
import socket
import threading
import traceback
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any
from urllib.parse import urlsplit

from zspace.core.checks import check_type
from zspace.core.errors import ZspaceError
from zspace.explorer.api import Api, Response, error_response
from zspace.explorer.session import MAX_POINTS, Session
from zspace.runs.run import RunLike

# route -> (package file, content type): the only files the server ever sends
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/static/explore.js": ("explore.js", "text/javascript; charset=utf-8"),
    "/static/explore.css": ("explore.css", "text/css; charset=utf-8"),
}
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SAFE_FETCH_SITES = ("same-origin", "none")  # "none": the user typed or bookmarked the URL


def load_static() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once from the installed package."""
    base = files("zspace.explorer") / "static"
    return {route: ((base / name).read_bytes(), kind) for route, (name, kind) in STATIC.items()}


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The IP address ``host`` writes (in brackets or not), None for a name."""
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    return host.lower() == "localhost" or ((ip := _ip(host)) is not None and ip.is_loopback)


def allowed_hosts(host: str, port: int) -> set[str]:
    """Host header values accepted for a server bound to (host, port)."""
    names = {host.lower(), "localhost", "127.0.0.1", "[::1]"}
    if ":" in host and not host.startswith("["):
        names.add(f"[{host.lower()}]")
    if host in ("0.0.0.0", "::", ""):  # every interface: the machine's own names too
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return {f"{n}:{port}" for n in names if n}


MAX_CONNECTIONS = 32  # connections served at once; a browser opens at most 6
BUSY = (  # the answer to a connection beyond them, sent without reading its request
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Retry-After: 1\r\nConnection: close\r\nContent-Length: 46\r\n\r\n"
    b"busy: too many connections; retry in a second\n"
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # listen backlog: a burst waits in it, not in SYN retries

    def __init__(
        self,
        address: tuple[str, int],
        api: Api,
        static: dict[str, tuple[bytes, str]],
        log: Callable[[str], None],
        log_requests: bool,
    ) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.api = api
        self.static = static
        self.log = log
        self.log_requests = log_requests
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        self.served = 0  # connections with a handler thread
        self.refused: queue.SimpleQueue[socket.socket | None] = queue.SimpleQueue()
        threading.Thread(target=self._refuse, daemon=True, name="zspace-explore-503").start()
        super().__init__(address, _Handler)
        host, port = address[0], self.server_address[1]
        self.hosts = allowed_hosts(host, port)
        self.any_ip = host in ("0.0.0.0", "::", "")
        self.port = port

    def host_ok(self, header: str | None) -> bool:
        if not header:
            return False
        header = header.strip().lower()
        if header in self.hosts:
            return True
        # an IP address (not a name): DNS rebinding needs a name the attacker controls
        host = header.rsplit(":", 1)[0] if not header.endswith("]") else header
        return self.any_ip and header.endswith(f":{self.port}") and _ip(host) is not None

    def process_request(self, request: Any, client_address: Any) -> None:
        """A handler thread for at most MAX_CONNECTIONS connections; the others are
        answered 503 at once by one thread, so a burst neither waits nor piles up."""
        with self.connections_lock:
            full = self.served >= MAX_CONNECTIONS
            self.served += not full
        if full:
            self.refused.put(request)
        else:
            super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self.connections_lock:
                self.served -= 1

    def server_close(self) -> None:
        super().server_close()
        self.refused.put(None)  # ends _refuse

    def _refuse(self) -> None:
        while (conn := self.refused.get()) is not None:
            try:
                conn.settimeout(0.5)
                conn.recv(65536)  # its request, so closing sends no reset before the answer
                conn.sendall(BUSY)
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            conn.close()

    def close_connections(self) -> None:
        with self.connections_lock:
            conns = list(self.connections)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "zspace-explore"
    sys_version = ""
    timeout = 60  # an idle keep-alive connection closes after a minute
    # headers and body go out in two writes: with Nagle's algorithm the body waits for
    # the client's delayed ACK (40 ms per request, measured), so send at once
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._serve(body=True)

    def do_HEAD(self) -> None:
        self._serve(body=False)

    def _not_allowed(self) -> None:
        self.close_connection = True  # its body, if any, is not read
        refused = error_response(405, f"{self.command[:20]} is not allowed: GET only")
        refused.headers["Allow"] = "GET, HEAD"
        self._send(refused)

    def __getattr__(self, name: str) -> Any:
        """Every method but GET and HEAD (http.server looks up ``do_<METHOD>``)."""
        if name.startswith("do_"):
            return self._not_allowed
        raise AttributeError(name)

    def _serve(self, body: bool) -> None:
        try:
            self._send(self._respond(), body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the browser went away (e.g. a superseded thumbnail)
        except Exception:
            self.server.log(f"zspace explore: internal error on {self.path[:200]}")
            self.server.log(traceback.format_exc().rstrip())
            msg = "internal error; the terminal running zspace explore shows the traceback"
            try:
                self._send(error_response(500, msg), body)
            except OSError:
                pass

    def _respond(self) -> Response:
        if len(self.headers.get_all("Host") or ()) > 1:
            return error_response(400, "more than one Host header")
        if not self.server.host_ok(self.headers.get("Host")):
            host = (self.headers.get("Host") or "")[:80]
            return error_response(403, f"Host {host!r} refused: use the URL the explorer printed")
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in SAFE_FETCH_SITES:
            return error_response(403, f"cross-site request refused (Sec-Fetch-Site: {site[:20]})")
        parts = urlsplit(self.path)
        if parts.path.startswith("/api/"):
            return self.server.api.handle(parts.path, parts.query)
        if parts.path in self.server.static and not parts.query:
            content, kind = self.server.static[parts.path]
            return Response(200, kind, content)
        if parts.path == "/favicon.ico":
            return Response(204, "image/x-icon", b"")
        return error_response(404, f"{parts.path[:80]}: not found")

    def _send(self, response: Response, body: bool = True) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        if response.content_type.startswith("text/html"):
            self.send_header("Content-Security-Policy", CSP)
        if response.status == 503:
            self.send_header("Retry-After", "1")
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if body and response.status != 204:
            self.wfile.write(response.body)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own errors (bad request line, 414, ...) as one line of text."""
        self.close_connection = True
        text = " ".join(str(message or self.responses.get(code, ("error",))[0]).split())
        try:
            self._send(error_response(code, text))
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log_requests:
            self.server.log(f"{self.address_string()} {format % args}")


class Explorer:
    """A running explorer: ``.url``, ``.stop()``; a context manager that stops on exit."""

    def __init__(self, server: _Server, session: Session) -> None:
        self._server = server
        self.session = session
        self.host = str(server.server_address[0])
        self.port = int(server.server_address[1])
        shown = f"[{self.host}]" if ":" in self.host else self.host
        if self.host in ("0.0.0.0", "::"):
            shown = "127.0.0.1" if self.host == "0.0.0.0" else "[::1]"
        self.url = f"http://{shown}:{self.port}/"
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
            name=f"zspace-explore-{self.port}",
        )  # fmt: skip
        self._stopped = False
        self._thread.start()

    @property
    def running(self) -> bool:
        return not self._stopped and self._thread.is_alive()

    def stop(self) -> None:
        """Stop serving, close the listening socket and open connections (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)

    def wait(self) -> None:
        """Block until stopped (Ctrl-C raises KeyboardInterrupt here: call stop())."""
        while self._thread.is_alive():
            self._thread.join(0.5)

    def __enter__(self) -> Explorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<zspace explorer of {self.session.path} at {self.url} ({state})>"

    def _repr_html_(self) -> str:
        from html import escape

        if not self.running:
            return f"<p>zspace explorer of {escape(str(self.session.path))}: stopped</p>"
        url = escape(self.url)
        return (
            f"<p>zspace explorer of <code>{escape(str(self.session.path))}</code>: "
            f'<a href="{url}" target="_blank" rel="noopener">{url}</a> '
            f"(call <code>.stop()</code> to end it)</p>"
        )


def explore(
    run: RunLike,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    split: str = "train",
    max_points: int = MAX_POINTS,
    threads: int | None = None,
    log: Callable[[str], None] | None = print,
    log_requests: bool = False,
) -> Explorer:
    """Serve the interactive latent-space page for ``run`` (a folder or a Run) and
    return at once; the server runs in a background thread until ``.stop()``.

    ``port=0`` picks a free port (see ``.url``). ``threads`` sets torch's intra-op
    threads for the process (default: leave them). Needs ``zspace encode RUN`` first;
    uses saved analyses (PCA pairs, t-SNE) and sampler fits when present."""
    check_type("port", port, int, "an integer (0 picks a free one)")
    check_type("host", host, str, "an address such as 127.0.0.1")
    check_type("max_points", max_points, int, "an integer")
    check_type("threads", threads, (int, type(None)), "an integer or None")
    log = log or (lambda s: None)
    if not 0 <= port <= 65535:
        raise ZspaceError(f"port {port}: must be 0..65535 (0 picks a free one)")
    if threads is not None:
        if threads < 1:
            raise ZspaceError(f"threads = {threads}: must be >= 1")
        import torch

        torch.set_num_threads(int(threads))
    if not is_loopback(host):
        log(
            f"zspace: warning: --host {host} is not a loopback address: anyone who can reach "
            "this machine on that port can see the run's images and use its model"
        )
    session = Session(run, split=split, max_points=max_points, log=log)
    try:
        server = _Server((host, int(port)), Api(session), load_static(), log, log_requests)
    except socket.gaierror as exc:
        raise ZspaceError(f"--host {host!r}: not an address of this machine ({exc})") from None
    except OSError as exc:
        raise ZspaceError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return Explorer(server, session)
