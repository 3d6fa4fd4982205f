"""The HTTP plumbing the lifecycle fakes (Klaviyo, Braze) share, in the house style of `ads.py`.

A `ThreadingHTTPServer` on 127.0.0.1, port 0, daemon threads, HTTP/1.1 with a Content-Length on every
answer. Each request is logged (method, path, query, headers, parsed body) under one lock. Faults queued
with `fail_next` hit record-carrying requests only, in order: the fake's own answers (`_fault_answer`,
given instead of applying the request, or after applying it for `accept_faults`), "timeout" (never
answered: the wait lasts until the client hangs up, however loaded the machine is), "drop" (the connection
closes before anything is applied) and "accept_then_drop" (the request is applied, then the connection
closes unanswered). `kill(pid, on_request, after_accepting)` SIGKILLs a client process when its
`on_request`-th record-carrying request arrives, before or after the fake applied it.

A fake with its own wire habits (HubSpot, Salesforce) overrides the hooks below their defaults: which verbs
it serves (`methods`), reason phrases, how a body is read, logged and encoded, which fault a request takes,
and answers given before any fault or kill (`_direct`: a token endpoint, a stats route).
"""

import json
import os
import signal
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

TRANSPORT_FAULTS = ("timeout", "drop", "accept_then_drop")
HANG_UP_WAIT_SECONDS = 300  # a client that never times out is a test bug; the fake stops waiting after this


class FaultyServer:
    answer_faults: tuple[str, ...] = ()  # answered by `_fault_answer` instead of applying the request
    accept_faults: tuple[str, ...] = ()  # the request is applied, then answered by `_fault_answer`
    other_faults: tuple[str, ...] = ()  # queued like the others, taken by the fake itself (e.g. per record)
    content_type = "application/json"
    methods: tuple[str, ...] = ("GET", "POST", "DELETE")
    reasons: dict[int, str] = {}  # status -> reason phrase, where it is not the standard one
    tcp_nodelay = False  # headers and body go out as two writes: set it to skip the Nagle wait between them

    def __init__(self) -> None:
        self.faults: list[str] = []
        self.faults_served: Counter = Counter()
        self.requests: list[dict] = []
        self.crashes: list[str] = []  # the fake's own bugs on a request (answered 500): a test should see none
        self.kill_plan: tuple[int, int, bool] | None = None
        self._requests_seen = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        # a short poll interval: shutdown() waits for it, and tests start and stop a fake each
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.01,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def fail_next(self, *faults: str) -> None:
        known = self.answer_faults + self.accept_faults + self.other_faults + TRANSPORT_FAULTS
        unknown = [f for f in faults if f not in known]
        assert not unknown, f"unknown faults {unknown}; known: {known}"
        with self._lock:
            self.faults.extend(faults)

    def kill(self, pid: int, on_request: int, after_accepting: bool) -> None:
        """SIGKILL `pid` when the `on_request`-th record-carrying request arrives, before or after accepting it."""
        self.kill_plan = (pid, on_request, after_accepting)

    # ---- the subclass's part --------------------------------------------------------------------------
    def _carries_records(self, method: str, path: str) -> bool:
        raise NotImplementedError

    def _fault_answer(self, fault: str) -> tuple[int, dict, dict[str, str]]:
        raise NotImplementedError

    def _handle(self, method: str, path: str, query: dict, headers, raw: bytes,
                body: object) -> tuple[int, dict, dict[str, str]]:
        """Check and apply one request (called under the lock); `body` is None when `raw` is not JSON."""
        raise NotImplementedError

    # ---- hooks with defaults --------------------------------------------------------------------------
    def _parse_body(self, path: str, headers, raw: bytes) -> object:
        """The body given to `_log_entry` and `_handle`: parsed JSON, {} when empty, None when not JSON."""
        try:
            return json.loads(raw) if raw else {}
        except ValueError:
            return None

    def _log_entry(self, method: str, path: str, query: str, headers, body: object) -> dict | None:
        """What `requests` keeps of a request (called under the lock), or None to keep nothing."""
        return {"method": method, "path": path, "query": query, "headers": dict(headers), "body": body}

    def _take_fault(self, path: str, records: bool, killing: bool) -> str | None:
        """The queued fault this request takes (called under the lock); `killing`: it is about to be killed."""
        fault = self.faults.pop(0) if records and self.faults else None
        self.faults_served[fault] += 1
        return fault

    def _direct(self, method: str, path: str, headers, raw: bytes,
                body: object) -> tuple[int, object, dict[str, str]] | None:
        """An answer given after logging but before any kill or fault, or None to go on."""
        return None

    def _encode(self, answer: object) -> tuple[bytes, str | None]:
        """The bytes of an answer and their Content-Type (None: no body)."""
        return (json.dumps(answer).encode(), self.content_type) if answer else (b"", None)


def _handler(fake: FaultyServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            if fake.tcp_nodelay:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, *args: object) -> None:
            pass

        def _answer(self, status: int, answer: object, extra: dict[str, str]) -> None:
            data, kind = fake._encode(answer)
            self.send_response(status, fake.reasons.get(status))
            if kind:
                self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _drop(self) -> None:
            self.close_connection = True
            self.connection.shutdown(2)

        def _wait_for_hang_up(self) -> None:
            self.close_connection = True
            self.connection.settimeout(HANG_UP_WAIT_SECONDS)
            try:
                while self.connection.recv(65536):
                    pass
            except OSError:
                pass

        def _serve(self, method: str) -> None:
            url = urlparse(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = fake._parse_body(url.path, self.headers, raw)
            records = fake._carries_records(method, url.path)
            with fake._lock:
                entry = fake._log_entry(method, url.path, url.query, self.headers, body)
                if entry is not None:
                    fake.requests.append(entry)
                fake._requests_seen += records
                seen = fake._requests_seen
                kill = fake.kill_plan if records and fake.kill_plan and fake.kill_plan[1] == seen else None
                fault = fake._take_fault(url.path, records, bool(kill and not kill[2]))
            direct = fake._direct(method, url.path, self.headers, raw, body)
            if direct is not None:
                return self._answer(*direct)
            if kill and not kill[2]:
                os.kill(kill[0], signal.SIGKILL)
                return self._drop()
            if fault == "timeout":
                return self._wait_for_hang_up()
            if fault == "drop":
                return self._drop()
            if fault in fake.answer_faults:
                return self._answer(*fake._fault_answer(fault))
            with fake._lock:
                try:
                    status, answer, headers = fake._handle(method, url.path, parse_qs(url.query), self.headers, raw,
                                                           body)
                except Exception as crash:  # a body shape the fake did not expect: answer, never hang up
                    fake.crashes.append(f"{method} {url.path}: {crash!r}")
                    status, answer, headers = 500, {"message": f"fake crashed: {crash!r}"}, {}
            if fault == "accept_then_drop" or kill:
                if kill:
                    os.kill(kill[0], signal.SIGKILL)
                return self._drop()
            self._answer(*(fake._fault_answer(fault) if fault in fake.accept_faults else (status, answer, headers)))

    for verb in fake.methods:
        setattr(Handler, f"do_{verb}", lambda handler, verb=verb: handler._serve(verb))
    return Handler
