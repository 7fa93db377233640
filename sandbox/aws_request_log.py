"""One line per AWS request the stand-in receives, for counting a run's requests by service and action.

    SANDBOX_AWS_REQUEST_LOG=<file>   (tools/sandbox sets it to logs/aws-requests.log)

Each line: ``<UTC time> <account key id> <region> <service> <action> <status> <client>``, where the
action is the X-Amz-Target operation, the query API's ``Action`` parameter, or the REST method and
path with its ids dropped (``GET:/clusters/*``); the client is ``ansible`` for requests of an Ansible
module (amazon.aws and our module_utils put ``Ansible`` in the user agent), ``node`` for the
simulated KMS nodes' vault requests (``kms-sim`` in theirs), and ``other``. werkzeug's access
log (aws.log) has no action and no caller.
"""
import datetime
import io
import os
import re
import threading
import urllib.parse

_CREDENTIAL = re.compile(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/")
_ID = re.compile(r"^(?:[0-9a-f]{8,}|[a-z]+-[0-9a-f]{6,}|arn:.*|\d+)$")


def _action(environ, body):
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.split(".")[-1]
    query = urllib.parse.parse_qs(environ.get("QUERY_STRING", ""))
    if "Action" in query:
        return query["Action"][0]
    if body and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        if "Action" in form:
            return form["Action"][0]
    parts = [p for p in environ.get("PATH_INFO", "/").split("/") if p]
    shape = "/".join("*" if _ID.match(urllib.parse.unquote(p)) or i > 2 else p for i, p in enumerate(parts[:4]))
    return "%s:/%s" % (environ.get("REQUEST_METHOD", "?"), shape)


def _client(environ):
    agent = environ.get("HTTP_USER_AGENT", "")
    if "Ansible" in agent or "ansible" in agent:
        return "ansible"
    if "kms-sim" in agent:
        return "node"
    return "other"


_LOCK = threading.Lock()  # one for the process: the server's request threads share the file


def wrap(app, path):
    """The WSGI app ``app`` logging every request to ``path``."""
    def logged(environ, start_response):
        body = b""
        if environ.get("REQUEST_METHOD") == "POST" and "x-www-form-urlencoded" in environ.get("CONTENT_TYPE", ""):
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
        match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
        key, region, service = match.groups() if match else ("-", "-", "-")
        status = []

        def start(code, headers, exc_info=None):
            status.append(code.split(" ", 1)[0])
            return start_response(code, headers, exc_info)

        result = app(environ, start)
        line = "%s %s %s %s %s %s %s\n" % (
            datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), key, region, service,
            _action(environ, body), status[0] if status else "-", _client(environ))
        with _LOCK, open(path, "a") as fh:
            fh.write(line)
        return result

    return logged


def install_from_env():
    """Wrap moto's server application when SANDBOX_AWS_REQUEST_LOG names a file."""
    path = os.environ.get("SANDBOX_AWS_REQUEST_LOG")
    if not path:
        return
    from moto.moto_server import werkzeug_app

    original = werkzeug_app.DomainDispatcherApplication.__call__

    def call(self, environ, start_response):
        inner = lambda env, start: original(self, env, start)  # noqa: E731
        return wrap(inner, path)(environ, start_response)

    werkzeug_app.DomainDispatcherApplication.__call__ = call
