"""Run Ansible's pipelined module payloads in processes forked from a preloaded interpreter.

For the development virtualenv (``make venv`` installs it as ``_mpc_forkserver`` with a ``.pth``
line, like tools/zipimport_cache.py). Every Ansible module task is a new Python process, and
before a module of ``amazon.aws`` or ``kubernetes.core`` does anything it imports ``boto3``
(about 0.2 s on a 2-core machine), builds a botocore client from the service's JSON model (up to
0.2 s for EC2) or imports the ``kubernetes`` client (about 0.5 s). The suites run thousands of
module tasks, so those imports are most of what ``make test`` spends.

``python -m _mpc_forkserver run -- <command>`` starts a server that imports those libraries once,
runs the command with ``MPC_FORKSERVER`` naming the server's socket, and stops the server when the
command ends. A Python process of this virtualenv started with that variable set, with no
arguments and a script on its standard input (exactly how Ansible starts a pipelined module:
``/bin/sh -c '<python> && sleep 0'``), hands its standard input, output and error, its arguments,
environment, working directory and ``sys.path`` to the server and waits. The server forks a fresh
process that takes them over and runs the script as ``python`` would: a new ``__main__``, the exit
status of ``SystemExit``, a traceback and status 1 for an uncaught exception, ``atexit``
functions at the end. The caller exits with the child's status, or is killed by the signal that
killed the child. A signal sent to the caller (a timeout's SIGTERM, Ctrl-C) is passed on to the
child; a caller that goes away takes its child with it.

What differs from a new interpreter is only what the server did before forking: the preloaded
libraries are already in ``sys.modules`` (their files are the same, this virtualenv's), and the
first read of each botocore JSON file the server read comes from its memory (each later read in
the same process reads the file, as botocore does). The server also imports the parts of
``ansible.module_utils`` every module imports (``basic`` and the AnsiballZ loader, about 0.09 s of
each module run); a run keeps them only when every ``ansible/`` file in its payload's zip is,
byte for byte (size and CRC-32), this virtualenv's file (the payload is built from the same
installation, so it is), the two package stubs AnsiballZ writes excepted. Otherwise (a payload
from another Ansible) the run forgets every preloaded ``ansible`` module and imports the
payload's own. Nothing of a collection is preloaded: ``ansible_collections`` code comes from the
payload. Environment read at import time is read again from the caller's environment (the one
known case: ``kubernetes.config``'s default kubeconfig path).

Any other invocation (arguments, an interactive terminal, ``MPC_FORKSERVER`` unset) and any
failure to reach the server run the interpreter as usual. Operators' runs never set the variable;
``make test`` does (docs/performance.md).
"""
import os
import sys

ENV = "MPC_FORKSERVER"
PRELOAD = ("boto3", "botocore.session", "botocore.client", "botocore.credentials", "botocore.httpsession",
           "kubernetes.client", "kubernetes.config", "kubernetes.dynamic", "yaml", "jinja2", "urllib3",
           "requests", "cryptography.x509", "cryptography.hazmat.primitives.asymmetric.ec",
           "cryptography.hazmat.primitives.serialization", "tomli_w")
# What (almost) every module payload imports from ansible.module_utils: AnsiballZ's loader and
# AnsibleModule, and what amazon.aws, community.aws, kubernetes.core and our modules import.
ANSIBLE_PRELOAD = ("ansible.module_utils._internal._ansiballz._loader", "ansible.module_utils.basic",
                   "ansible.module_utils.common.dict_transformations", "ansible.module_utils._text",
                   "ansible.module_utils.common.text.converters", "ansible.module_utils.parsing.convert_bool",
                   "ansible.module_utils.urls", "ansible.module_utils.six", "ansible.module_utils.common.network",
                   "ansible.module_utils.ansible_release", "ansible.module_utils.compat.version",
                   "ansible.module_utils.common.yaml", "ansible.module_utils.common.validation",
                   "ansible.module_utils.common.process", "ansible.module_utils.common.warnings",
                   "ansible.module_utils.common.sentinel", "ansible.module_utils.common.collections",
                   "ansible.module_utils.common.arg_spec")
# The package stubs AnsiballZ writes into every payload's zip instead of the installed files.
ANSIBALLZ_STUBS = ("ansible/__init__.py", "ansible/module_utils/__init__.py")
BOTO_SERVICES = ("ec2", "s3", "iam", "eks", "kms", "sts", "rds", "elbv2", "secretsmanager", "cloudwatch", "logs",
                 "route53", "acm", "autoscaling", "ssm")


# ------------------------------------------------------------------------------------- caller
def _is_module_payload():
    """True for `<python>` with no arguments and a script on a non-terminal standard input."""
    argv = getattr(sys, "orig_argv", None)
    if not argv or len(argv) != 1:
        return False
    try:
        return not os.isatty(0)
    except OSError:
        return False


def _delegate(path):
    """Hand this process's run to the server at `path`; returns only if the server cannot be reached."""
    import array
    import json
    import signal
    import socket
    import struct

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        umask = os.umask(0o022)
        os.umask(umask)
        header = json.dumps({"argv": [""], "env": dict(os.environ), "cwd": os.getcwd(), "umask": umask,
                             "path": sys.path}).encode()
        fds = array.array("i", [0, 1, 2])
        sock.sendmsg([struct.pack("!I", len(header)) + header],
                     [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
        pid = struct.unpack("!i", _recv_exact(sock, 4))[0]
    except (OSError, ValueError, struct.error):
        sock.close()
        return  # run as usual
    # From here the child owns the run: this process only relays signals and the exit status.
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, lambda s, _f: _kill(pid, s))
    try:
        status = struct.unpack("!i", _recv_exact(sock, 4))[0]
    except (OSError, ValueError, struct.error):
        status = 255 << 8  # the server's handler died: report a failure, as a crashed interpreter would
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 255)


def _kill(pid, signum):
    try:
        os.kill(pid, signum)
    except OSError:
        pass


def _recv_exact(sock, size):
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("connection closed")
        data += chunk
    return data


# ------------------------------------------------------------------------------------- server
_BOTO_FILES = {}


def _preload():
    import importlib

    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:  # not installed here, or unusable: the module imports it itself
            pass
    try:
        import botocore.loaders
        import botocore.session
    except ImportError:
        return
    loader_cls = botocore.loaders.JSONFileLoader
    original = loader_cls.load_file
    seen = []

    def recording(self, file_path):
        seen.append(file_path)
        return original(self, file_path)

    loader_cls.load_file = recording
    try:
        session = botocore.session.Session()
        for service in BOTO_SERVICES:
            try:
                session.create_client(service, region_name="eu-west-1", aws_access_key_id="preload",
                                      aws_secret_access_key="preload")
            except Exception:
                pass
    finally:
        loader_cls.load_file = original
    # Read each file again for the children: what client creation may have changed in the objects
    # it loaded (botocore merges extras into models in place) is not what a child would read.
    for file_path in set(seen):
        data = original(loader_cls(), file_path)
        if data is not None:
            _BOTO_FILES[file_path] = data

    def load_file(self, file_path):
        data = _BOTO_FILES.pop(file_path, None)  # the first read in this process; later ones read the file
        return data if data is not None else original(self, file_path)

    loader_cls.load_file = load_file


_ANSIBLE_FILES = {}  # "ansible/module_utils/basic.py" -> (size, CRC-32) of this virtualenv's file


def _preload_ansible():
    """Import ANSIBLE_PRELOAD and record the files a preloaded `ansible` package imports from."""
    import base64  # noqa: F401 - what each run's check of its payload imports (_payload_uses_these_files)
    import importlib
    import io  # noqa: F401
    import zipfile  # noqa: F401
    import zlib

    try:
        for name in ANSIBLE_PRELOAD:
            importlib.import_module(name)
        import ansible
    except Exception:  # not installed here, or unusable: every run imports its payload's
        _forget_ansible()
        return
    top = os.path.dirname(os.path.dirname(os.path.abspath(ansible.__file__)))
    for sub in ("module_utils", "modules"):
        for dirpath, dirnames, filenames in os.walk(os.path.join(top, "ansible", sub)):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            for filename in filenames:
                path = os.path.join(dirpath, filename)
                with open(path, "rb") as handle:
                    data = handle.read()
                _ANSIBLE_FILES[os.path.relpath(path, top).replace(os.sep, "/")] = (len(data), zlib.crc32(data))


def _forget_ansible():
    for name in [name for name in sys.modules if name == "ansible" or name.startswith("ansible.")]:
        del sys.modules[name]


def _payload_uses_these_files(source):
    """False when `source`, an AnsiballZ payload, carries an `ansible/` file that differs from this
    virtualenv's (or that it does not have): the preloaded modules are then not the payload's."""
    import base64
    import io
    import zipfile

    start = source.find(b"\nzip_data='")
    if start < 0:
        return True  # not a module payload: `import ansible` gives this virtualenv's, as in a new interpreter
    start += len(b"\nzip_data='")
    end = source.find(b"'", start)
    try:
        entries = zipfile.ZipFile(io.BytesIO(base64.b64decode(source[start:end], validate=True))).infolist()
    except Exception:
        return False
    for info in entries:
        if info.filename.startswith("ansible/") and info.filename not in ANSIBALLZ_STUBS:
            if _ANSIBLE_FILES.get(info.filename) != (info.file_size, info.CRC):
                return False
    return True


def _child(conn, request, fds):
    """In the forked run: become the caller's process and run its script."""
    import signal

    conn.close()
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as CPython sets these two at start-up
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
        os.close(fd)
    os.chdir(request["cwd"])
    os.umask(request["umask"])
    os.environ.clear()  # in place: code that kept a reference to os.environ sees the caller's
    os.environ.update(request["env"])
    sys.argv = list(request["argv"])
    sys.path[:] = [""] + request["path"]
    _reread_environment()
    sys.stdin = sys.__stdin__ = _stream(0, "r")
    sys.stdout = sys.__stdout__ = _stream(1, "w")
    sys.stderr = sys.__stderr__ = _stream(2, "w", errors="backslashreplace")
    import builtins
    import types

    main = types.ModuleType("__main__")
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main
    status = 0
    try:
        source = sys.stdin.buffer.read()
        if "ansible" in sys.modules and not _payload_uses_these_files(source):
            _forget_ansible()
        code = compile(source, "<stdin>", "exec")
        exec(code, main.__dict__)
    except SystemExit as exc:
        status = _exit_status(exc.code)
    except BaseException:
        kind, value, trace = sys.exc_info()
        value.__traceback__ = trace.tb_next  # from the script's frame on, as python prints it
        sys.excepthook(kind, value, trace.tb_next)
        status = 1
    try:
        import atexit

        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(status)


def _exit_status(code):
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        sys.stderr.write("%s\n" % (code,))
    except Exception:
        pass
    return 1


def _stream(fd, mode, errors=None):
    import io

    encoding = os.environ.get("PYTHONIOENCODING", "").split(":")[0] or "utf-8"
    raw = io.FileIO(fd, mode, closefd=False)
    buffered = io.BufferedReader(raw) if mode == "r" else io.BufferedWriter(raw)
    return io.TextIOWrapper(buffered, encoding=encoding, errors=errors or "strict",
                            line_buffering=(mode == "w" and fd == 2), write_through=(fd == 2))


def _reread_environment():
    """What the interpreter and the preloaded libraries took from the server's environment at start."""
    import locale
    import time

    try:
        locale.setlocale(locale.LC_CTYPE, "")
    except locale.Error:
        pass
    time.tzset()
    module = sys.modules.get("kubernetes.config.kube_config")
    if module is not None and hasattr(module, "KUBE_CONFIG_DEFAULT_LOCATION"):
        module.KUBE_CONFIG_DEFAULT_LOCATION = os.environ.get("KUBECONFIG", "~/.kube/config")


def _handle(conn):
    """A handler process per caller: fork the run, relay its pid and exit status, stop it if the caller goes."""
    import array
    import json
    import select
    import signal
    import socket
    import struct

    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    fds = array.array("i")
    size = struct.calcsize("i") * 3
    msg, ancdata, _flags, _addr = conn.recvmsg(4, socket.CMSG_SPACE(size))
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[:len(data) - (len(data) % fds.itemsize)])
    length = struct.unpack("!I", msg + _recv_exact(conn, 4 - len(msg)))[0]
    request = json.loads(_recv_exact(conn, length))
    pid = os.fork()
    if pid == 0:
        _child(conn, request, list(fds))
    for fd in fds:
        os.close(fd)
    conn.sendall(struct.pack("!i", pid))
    watched = [conn]
    try:
        watched.append(os.pidfd_open(pid))  # readable once the run has exited
        poll = None
    except (AttributeError, OSError):  # a kernel before 5.3: look every 10 ms
        poll = 0.01
    while True:
        ready, _w, _x = select.select(watched, [], [], poll)
        if conn in ready and not conn.recv(1):  # the caller went away: so does its run
            _kill(pid, signal.SIGKILL)
            watched.remove(conn)
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
    try:
        conn.sendall(struct.pack("!i", status))
    except OSError:
        pass
    os._exit(0)


def serve(path):
    import signal
    import socket

    _preload()
    _preload_ansible()
    if len(os.listdir("/proc/self/task")) > 1:  # forking a process with threads is unsafe: no server
        sys.exit("module forkserver: a preloaded library started a thread; not serving")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # handlers are reaped by the kernel
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    while True:
        try:
            conn, _addr = listener.accept()
        except InterruptedError:
            continue
        if os.fork() == 0:
            listener.close()
            try:
                _handle(conn)
            finally:
                os._exit(1)
        conn.close()


def run(command):
    """Start a server, run `command` with MPC_FORKSERVER set, stop the server; the command's status."""
    import subprocess
    import tempfile
    import time

    with tempfile.TemporaryDirectory(prefix="mpc-forkserver-") as tmp:
        path = os.path.join(tmp, "socket")
        server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "serve", path],
                                  env={k: v for k, v in os.environ.items() if k != ENV})
        deadline = time.monotonic() + 60
        while not os.path.exists(path) and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        env = dict(os.environ)
        if os.path.exists(path):
            env[ENV] = path
        else:
            sys.stderr.write("module forkserver did not start; running without it\n")
        try:
            return subprocess.call(command, env=env)
        finally:
            server.terminate()
            server.wait()


def main(argv):
    if len(argv) >= 2 and argv[0] == "serve":
        serve(argv[1])
    elif len(argv) >= 2 and argv[0] == "run" and argv[1] == "--":
        sys.exit(run(argv[2:]))
    else:
        sys.exit("usage: python -m _mpc_forkserver run -- <command> | serve <socket path>")


if __name__ == "__main__":
    main(sys.argv[1:])
elif os.environ.get(ENV) and _is_module_payload():
    _delegate(os.environ[ENV])
