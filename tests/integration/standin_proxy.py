"""A reverse proxy in front of a stand-in, with faults a test switches on and off.

The stand-ins keep their state in memory, so stopping one loses everything it knew. Placed
between the playbook and a stand-in, this proxy fakes the faults that matter without that loss:

* ``cut()`` / ``restore()``: the endpoint becomes unreachable (the listening socket is closed,
  open connections are dropped: clients get "connection refused") and comes back later, with
  the stand-in's state intact. ``cut_after(match, then=N)`` cuts by itself once a request that
  ``match`` accepts has been answered and N more requests after it: "stopped in the middle".
* ``throttle(rule)``: ``rule(request) -> int`` says how many times in a row a request (identified
  by method, path, query, action and body) is answered with AWS's real throttling error for its
  protocol instead of being forwarded: EC2 query ``RequestLimitExceeded`` (503), other query
  APIs ``Throttling`` (400), JSON APIs ``ThrottlingException`` (400), REST-JSON APIs
  ``ThrottlingException`` (429, ``x-amzn-ErrorType``), S3 ``SlowDown`` (503). A retried request
  carries the same identity, so a burst of N throttles N consecutive attempts.

* ``fail(rule)``: ``rule(request)`` returns None (forward it), an AWS error ``(code, message)``
  to answer with, in the request's protocol (``aws_error``: 403 for access denied and expired
  credentials, 400 for the rest), a whole answer ``(status, headers, body)`` (a Kubernetes API
  error, say), or ``HANG``: the request is read and never answered until
  ``release()`` or ``cut()`` (an AWS call that hangs). Every attempt of a call asks the rule.

Every request is recorded (``log``): service, action, user agent, status, throttled or not.
TLS is terminated with the stand-in's own certificate, so clients keep verifying the
sandbox CA (``AWS_CA_BUNDLE``); plain HTTP stand-ins (the Kubernetes emulators) work too.
"""
import hashlib
import http.client
import json
import re
import socket
import ssl
import threading
import time
import urllib.parse
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "content-length"}
CREDENTIAL_RE = re.compile(r"Credential=[^/]+/[0-9]{8}/([^/]+)/([^/]+)/aws4_request")


class Request(object):
    """What the proxy knows about one request (and, once answered, its status)."""

    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.user_agent = headers.get("User-Agent", "")
        match = CREDENTIAL_RE.search(headers.get("Authorization", ""))
        self.region, self.service = (match.group(1), match.group(2)) if match else ("", "")
        self.target = headers.get("X-Amz-Target", "")
        content_type = headers.get("Content-Type", "")
        self.action = ""
        if self.target:
            self.protocol = "json"
            self.action = self.target.split(".")[-1]
        elif self.service == "s3":
            self.protocol = "s3"
            self.action = "%s %s" % (method, urllib.parse.urlsplit(path).path.split("/")[1] if path != "/" else "/")
        elif content_type.startswith("application/x-www-form-urlencoded") and b"Action=" in body:
            self.protocol = "ec2" if self.service == "ec2" else "query"
            self.action = urllib.parse.parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
        else:
            self.protocol = "rest-json" if self.service else "http"
            self.action = "%s %s" % (method, urllib.parse.urlsplit(path).path)
        # Same identity for every attempt of one call: the signature date changes between
        # attempts, and so does the idempotency token botocore fills in when a module's own retry
        # calls the API again; the call does not.
        self.key = hashlib.sha256(b"\0".join([method.encode(), path.encode(), self.target.encode(),
                                               _without_tokens(body)])).hexdigest()
        self.status = None
        self.throttled = False
        self.injected = None  # the error code fail() answered with
        self.hung = False
        self.time = time.monotonic()

    def __repr__(self):
        return "<%s %s %s %s%s>" % (self.service or "-", self.action, self.status,
                                    "throttled " if self.throttled else "", self.user_agent.split(" ")[-1])


TOKEN_RE = re.compile(rb'(^|&)(ClientToken|ClientRequestToken|IdempotencyToken)=[^&]*'
                      rb'|"(clientToken|clientRequestToken|ClientToken|ClientRequestToken|IdempotencyToken)"\s*:\s*"[^"]*"')


def _without_tokens(body):
    return TOKEN_RE.sub(b"", body)


def throttling_error(request):
    """(status, headers, body) of AWS's throttling answer for the request's protocol."""
    rid = str(uuid.uuid4())
    if request.protocol == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code>'
                '<Message>Request limit exceeded.</Message></Error></Errors><RequestID>%s</RequestID></Response>' % rid)
        return 503, {"Content-Type": "text/xml;charset=UTF-8"}, body.encode()
    if request.protocol == "query":
        body = ('<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>'
                '</Error><RequestId>%s</RequestId></ErrorResponse>' % rid)
        return 400, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body.encode()
    if request.protocol == "json":
        body = '{"__type":"ThrottlingException","message":"Rate exceeded"}'
        return 400, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": rid}, body.encode()
    if request.protocol == "s3":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your '
                'request rate.</Message><RequestId>%s</RequestId></Error>' % rid)
        return 503, {"Content-Type": "application/xml", "x-amz-request-id": rid}, body.encode()
    body = '{"message":"Rate exceeded"}'
    return 429, {"Content-Type": "application/json", "x-amzn-ErrorType": "ThrottlingException",
                 "x-amzn-RequestId": rid}, body.encode()


HANG = "hang"
FORBIDDEN_CODES = ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "ExpiredToken",
                   "ExpiredTokenException", "UnrecognizedClientException", "InvalidClientTokenId")


def aws_error(request, code, message):
    """(status, headers, body) of AWS's error ``code`` for the request's protocol."""
    rid = str(uuid.uuid4())
    status = 403 if code in FORBIDDEN_CODES else 400
    if request.protocol == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>%s</Code>'
                '<Message>%s</Message></Error></Errors><RequestID>%s</RequestID></Response>' % (code, message, rid))
        return status, {"Content-Type": "text/xml;charset=UTF-8"}, body.encode()
    if request.protocol == "query":
        body = ('<ErrorResponse><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message>'
                '</Error><RequestId>%s</RequestId></ErrorResponse>' % (code, message, rid))
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": rid}, body.encode()
    if request.protocol == "json":
        body = json.dumps({"__type": code, "message": message})
        return status, {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": rid}, body.encode()
    if request.protocol == "s3":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>%s</Code><Message>%s</Message>'
                '<RequestId>%s</RequestId></Error>' % (code, message, rid))
        return status, {"Content-Type": "application/xml", "x-amz-request-id": rid}, body.encode()
    return status, {"Content-Type": "application/json", "x-amzn-ErrorType": code, "x-amzn-RequestId": rid}, \
        json.dumps({"message": message}).encode()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, proxy, address):
        self.proxy = proxy
        ThreadingHTTPServer.__init__(self, address, _Handler)

    def finish_request(self, request, client_address):
        # TLS handshake in the connection's own thread, not in the accept loop.
        if self.proxy.server_context is not None:
            try:
                request = self.proxy.server_context.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return
        self.proxy._track(request)
        try:
            ThreadingHTTPServer.finish_request(self, request, client_address)
        finally:
            self.proxy._untrack(request)

    def handle_error(self, request, client_address):
        pass  # a connection dropped by cut() is expected


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _handle(self):
        proxy = self.server.proxy
        request = Request(self.command, self.path, self.headers, self._body())
        fault = proxy._fault(request)
        if fault == HANG:
            request.status, request.hung = "hang", True
            proxy._record(request)
            proxy._released.wait()
            self.close_connection = True
            return
        if fault:
            status, headers, body = fault if len(fault) == 3 else aws_error(request, *fault)
            request.status, request.injected = status, fault[0]
            proxy._record(request)
            self._reply(status, list(headers.items()), body)
            return
        burst = proxy._throttle_burst(request)
        if burst:
            status, headers, body = throttling_error(request)
            request.status, request.throttled = status, True
            proxy._record(request)
            self._reply(status, list(headers.items()), body)
            return
        try:
            status, headers, body = proxy._forward(request)
        except OSError as exc:
            request.status = 502
            proxy._record(request)
            self._reply(502, [("Content-Type", "text/plain")], ("proxy: upstream unreachable: %s" % exc).encode())
            return
        request.status = status
        proxy._record(request)
        self._reply(status, headers, body)
        proxy._after(request)

    def _reply(self, status, headers, body):
        self.send_response(status)
        length = None
        for name, value in headers:
            if name.lower() == "content-length":
                length = value
            if name.lower() not in HOP_BY_HOP:
                self.send_header(name, value)
        if self.command == "HEAD":
            self.send_header("Content-Length", length if length is not None else "0")
        else:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _handle


class FaultProxy(object):
    """``FaultProxy(28050, "https://127.0.0.1:28000", cert=..., key=..., cafile=...)``."""

    def __init__(self, port, upstream, cert=None, key=None, cafile=None, host="127.0.0.1"):
        self.address = (host, port)
        parts = urllib.parse.urlsplit(upstream)
        self.upstream_https = parts.scheme == "https"
        self.upstream = (parts.hostname, parts.port or (443 if self.upstream_https else 80))
        self.server_context = None
        if cert:
            self.server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.server_context.load_cert_chain(cert, key)
        self.client_context = ssl.create_default_context(cafile=cafile) if self.upstream_https else None
        self.log = []
        self._lock = threading.Lock()
        self._conns = set()
        self._server = None
        self._thread = None
        self._rule = None
        self._fault_rule = None
        self._released = threading.Event()
        self._seen = {}
        self._cut_match = None
        self._cut_then = 0
        self.cut_at = None  # the request after which an automatic cut happened

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self):
        return "%s://%s:%d" % ("https" if self.server_context else "http", self.address[0], self.address[1])

    @property
    def listening(self):
        return self._server is not None

    def start(self):
        self._server = _Server(self, self.address)
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="fault-proxy-%d" % self.address[1], daemon=True)
        self._thread.start()
        return self

    def cut(self):
        """Unreachable from now on: nothing listens, open connections are dropped."""
        with self._lock:
            server, self._server = self._server, None
            conns = list(self._conns)
        self._released.set()
        if server is None:
            return
        server.shutdown()
        server.server_close()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()

    def restore(self):
        """Reachable again (the stand-in behind kept its state)."""
        if self._server is None:
            self.start()

    stop = cut

    def cut_after(self, match, then=0):
        """Cut automatically once a request ``match(request)`` accepts was answered, and ``then`` more."""
        with self._lock:
            self._cut_match, self._cut_then, self.cut_at = match, then, None

    def throttle(self, rule):
        """``rule(request) -> int``: throttle that many consecutive attempts of this call (0: forward it)."""
        with self._lock:
            self._rule = rule
            self._seen = {}

    def fail(self, rule):
        """``rule(request) -> None | (code, message) | HANG`` for every request from now on (None: off)."""
        with self._lock:
            self._fault_rule = rule
            self._released.clear()

    def release(self):
        """Hung requests end (their connections are closed without an answer)."""
        self._released.set()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cut()

    # ------------------------------------------------------------------ reports
    def requests(self, since=0):
        with self._lock:
            return list(self.log[since:])

    def mark(self):
        with self._lock:
            return len(self.log)

    # ------------------------------------------------------------------ internals
    def _track(self, conn):
        with self._lock:
            self._conns.add(conn)

    def _untrack(self, conn):
        with self._lock:
            self._conns.discard(conn)

    def _record(self, request):
        with self._lock:
            self.log.append(request)

    def _fault(self, request):
        with self._lock:
            rule = self._fault_rule
        return rule(request) if rule is not None else None

    def _throttle_burst(self, request):
        with self._lock:
            if self._rule is None:
                return 0
            state = self._seen.get(request.key)
            if state is None:
                state = self._seen[request.key] = [self._rule(request) or 0, 0]
            if state[1] < state[0]:
                state[1] += 1
                return True
            return False

    def _forward(self, request):
        host, port = self.upstream
        if self.upstream_https:
            conn = http.client.HTTPSConnection(host, port, timeout=120, context=self.client_context)
        else:
            conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            if request.body or request.method in ("POST", "PUT", "PATCH"):
                headers["Content-Length"] = str(len(request.body))
            conn.request(request.method, request.path, body=request.body or None, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, resp.getheaders(), body
        finally:
            conn.close()

    def _after(self, request):
        cut = False
        with self._lock:
            if self._cut_match is None:
                return
            if self.cut_at is None and self._cut_match(request):
                self.cut_at = request
                self._cut_countdown = self._cut_then
            elif self.cut_at is not None:
                self._cut_countdown -= 1
            if self.cut_at is not None and self._cut_countdown <= 0:
                self._cut_match = None
                cut = True
        if cut:
            threading.Thread(target=self.cut, daemon=True).start()
