"""Fixtures shared by the unit suites that run modules against a real moto server."""
import os

import pytest


@pytest.fixture(scope="module")
def moto_url(request):
    """A moto server for the test module, on MOTO_PORT_BASE + the xdist worker number.

    Each module declares its own MOTO_PORT_BASE, so suites running side by side (other
    modules, Molecule scenarios, the sandbox) never share a port.
    """
    from moto.server import ThreadedMotoServer

    from tests.support.aws_standin import extend

    extend(secure=False)  # the same moto as tools/sandbox and Molecule run (plain HTTP here)

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    port = request.module.MOTO_PORT_BASE + int("".join(ch for ch in worker if ch.isdigit()) or 0)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield "http://127.0.0.1:%d" % port
    server.stop()
