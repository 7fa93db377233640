"""Endpoints that misbehave, for the fault tests of the health checks.

* HangingEndpoint: a plain TCP socket that accepts connections and never sends a byte
  (what a wedged process, or a load balancer with no healthy target, looks like);
* NonKmsServer: a working gRPC server that serves some other service (and, optionally,
  grpc.health.v1 for that service only): reachable, but not a KMS node;
* self_signed_cert(): a key and self-signed certificate for TLS servers (SimNode's
  ``client_tls`` option) and the TLS-mismatch tests.
"""
import datetime
import socket
import threading
from concurrent import futures

import grpc

from . import proto as P


class HangingEndpoint(object):
    """Listen on 127.0.0.1:port, accept every connection, never answer."""

    def __init__(self, port, host="127.0.0.1"):
        self.address = (host, port)
        self._sock = None
        self._conns = []
        self._stop = threading.Event()
        self._thread = None

    @property
    def endpoint(self):
        return "%s:%d" % self.address

    def start(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(self.address)
        sock.listen(64)
        sock.settimeout(0.2)
        self._sock = sock
        self._thread = threading.Thread(target=self._accept, name="hanging-%d" % self.address[1], daemon=True)
        self._thread.start()
        return self

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self._conns.append(conn)  # keep it open, read nothing, send nothing

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(2)
        for conn in self._conns:
            conn.close()
        if self._sock:
            self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class NonKmsServer(object):
    """A gRPC server for ``example.v1.Greeter`` only (plus grpc.health.v1 if ``health``)."""

    def __init__(self, port, health=False, host="127.0.0.1"):
        self.port = port
        self.host = host
        self.health = health
        self._server = None

    @property
    def endpoint(self):
        return "%s:%d" % (self.host, self.port)

    def start(self):
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=[("grpc.so_reuseport", 0)])
        greet = grpc.unary_unary_rpc_method_handler(lambda req, ctx: b"hello", lambda b: b, lambda b: b)
        handlers = [grpc.method_handlers_generic_handler("example.v1.Greeter", {"SayHello": greet})]
        if self.health:
            def check(request, context):
                if request.service not in ("", "example.v1.Greeter"):
                    context.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
                return P.messages.HealthCheckResponse(status=1)
            req_cls, resp_cls = P.METHODS[P.HEALTH_CHECK]
            handlers.append(grpc.method_handlers_generic_handler(P.HEALTH_SERVICE, {
                "Check": grpc.unary_unary_rpc_method_handler(check, req_cls.FromString, resp_cls.SerializeToString)}))
        server.add_generic_rpc_handlers(handlers)
        if server.add_insecure_port("%s:%d" % (self.host, self.port)) != self.port:
            raise RuntimeError("cannot bind %s" % self.endpoint)
        server.start()
        self._server = server
        return self

    def stop(self):
        if self._server:
            self._server.stop(None).wait(5)
            self._server = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def self_signed_cert(common_name="localhost"):
    """(key_pem, cert_pem) of a fresh self-signed certificate valid for ``common_name``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(common_name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)
