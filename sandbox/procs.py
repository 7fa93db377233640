"""Processes and ports of the stand-ins, read from Linux's /proc.

* :func:`identity` / :func:`same_process`: a process is named by its pid, its process group and
  its start time (clock ticks after boot, /proc/<pid>/stat field 22) on this boot
  (/proc/sys/kernel/random/boot_id). A pid the kernel has given to another program since has
  another start time, so a state file written by ``tools/sandbox up`` never makes ``down`` (or a
  stand-in waiting for its owner) act on a stranger.
* :func:`port_holders` / :func:`describe_port`: who listens on a TCP port of this machine:
  the socket's inode from /proc/net/tcp and tcp6, the process from /proc/<pid>/fd (only the
  processes this user may read), else ``ss -ltnp`` when it is installed.
* :func:`watch_owner`: a daemon thread that calls back once the owner process is gone.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

LISTEN = "0A"  # TCP state of a listening socket in /proc/net/tcp


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name: [state, ppid, pgrp, session, ...]."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def start_ticks(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[19]) if fields and len(fields) > 19 else None


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def identity(pid: int) -> dict | None:
    """{pid, pgid, start, boot}: what names this process across pid reuse (None when gone)."""
    fields = _stat_fields(pid)
    if not fields or fields[0] == "Z":
        return None
    return {"pid": pid, "pgid": int(fields[2]), "start": int(fields[19]), "boot": boot_id()}


def same_process(record: dict) -> bool:
    """True if the process ``record`` (from :func:`identity`) still runs, not a zombie, not another
    program that got its pid."""
    try:
        pid = int(record["pid"])
    except (KeyError, TypeError, ValueError):
        return False
    now = identity(pid)
    return bool(now) and now["start"] == record.get("start") and now["boot"] == record.get("boot", now["boot"])


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    members = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(int(entry))
            if fields and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry))
    return members


def owned_members(record: dict) -> list[int]:
    """Live members of the process group ``record`` leads, while that group is still ours.

    The group is ours while its leader (the recorded pid) is the recorded process; when the
    leader has exited, while no other process has taken its pid (Linux gives no new process a
    pid that is still some group's id, so the remaining members are then the leader's)."""
    try:
        pid, pgid = int(record["pid"]), int(record.get("pgid", record["pid"]))
    except (KeyError, TypeError, ValueError):
        return []
    if record.get("boot") and record["boot"] != boot_id():
        return []  # recorded before a reboot: none of its processes can still run
    if not same_process(record) and identity(pid) is not None:
        return []  # the pid now belongs to another program
    return group_members(pgid)


def stop_record(record: dict, timeout: float = 15.0) -> bool:
    """SIGTERM the recorded process group, SIGKILL what is left after ``timeout``.
    False when nothing of it ran."""
    import signal

    members = owned_members(record)
    if not members:
        return False
    pgid = int(record.get("pgid", record["pid"]))
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(int(record["pid"]), os.WNOHANG)
        if not group_members(pgid):
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    return True


# ------------------------------------------------------------------------------ ports
def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def port_holders(port: int) -> list[tuple[int, str]]:
    """[(pid, command line)] of the processes listening on TCP ``port`` that can be known."""
    inodes = _listening_inodes(port)
    holders: list[tuple[int, str]] = []
    if inodes:
        wanted = {f"socket:[{inode}]" for inode in inodes}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                fds = os.listdir(f"/proc/{entry}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{entry}/fd/{fd}") in wanted:
                        holders.append((int(entry), cmdline(int(entry))))
                        break
                except OSError:
                    continue
    if not holders and shutil.which("ss"):
        try:
            out = subprocess.run(["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True,
                                 timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        for pid in sorted({int(p) for p in re.findall(r"pid=(\d+)", out)}):
            holders.append((pid, cmdline(pid)))
    return holders


def describe_port(port: int) -> str:
    """``port N is in use by pid P (command)``, or without the holder when it cannot be known."""
    holders = port_holders(port)
    if not holders:
        return f"port {port} is in use (by a process this user cannot see)"
    who = ", ".join(f"pid {pid} ({(command or '?')[:100]})" for pid, command in holders)
    return f"port {port} is in use by {who}"


# ------------------------------------------------------------------------------ owner
def watch_owner(owner: dict, on_gone: Callable[[], None], interval: float = 0.5) -> threading.Thread:
    """Call ``on_gone()`` once, from a daemon thread, when the process ``owner`` has ended."""
    def run() -> None:
        while same_process(owner):
            time.sleep(interval)
        on_gone()

    thread = threading.Thread(target=run, name="owner-watch", daemon=True)
    thread.start()
    return thread


def parse_owner(text: str) -> dict | None:
    """``PID:START:BOOT`` (what :func:`format_owner` writes) -> an identity; None for ``""``/``-``."""
    if not text or text == "-":
        return None
    pid, start, boot = (text.split(":", 2) + ["", ""])[:3]
    return {"pid": int(pid), "start": int(start), "boot": boot}


def format_owner(record: dict) -> str:
    return f"{record['pid']}:{record['start']}:{record.get('boot', '')}"



def die_with_parent() -> Callable[[], None]:
    """A ``preexec_fn`` for a child that must not outlive the process starting it: SIGTERM when
    the parent ends (Linux ``PR_SET_PDEATHSIG``), however the parent ended. prctl is looked up
    here, in the parent: the child only calls it."""
    import ctypes
    import signal

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)
    return lambda: prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)
