"""tests/conftest.py: the tests of a module that share a module-scoped fixture of that module run on
one xdist worker, so the fixture (a check-mode deploy, a render, a moto account) is built once, not
once per worker that gets one of them; a group given explicitly stays as it is."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = ("tests/integration/test_check_mode_deploy.py", "tests/unit/test_monitoring.py",
           "tests/integration/test_faults.py", "tests/integration/test_first_start.py", "tests/unit/test_privatelink_filters.py",
           "tests/unit/test_lb_controller.py", "tests/integration/test_lb_controller.py")


def collected_groups():
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "-p", "tests.support.print_xdist_groups"] + list(MODULES),
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    line = next(line for line in proc.stdout.splitlines() if line.startswith("XDIST-GROUPS "))
    return json.loads(line[len("XDIST-GROUPS "):])


def test_tests_sharing_a_module_fixture_get_their_module_as_group():
    groups = collected_groups()

    def of(module):
        return dict((nodeid.split("::", 1)[1], g) for nodeid, g in groups.items() if nodeid.startswith(module + "::"))

    check_mode = of("tests/integration/test_check_mode_deploy.py")
    assert check_mode["test_check_mode_runs_to_the_end"] == ["tests/integration/test_check_mode_deploy.py"]
    assert check_mode["test_check_mode_leaves_the_account_empty"] == ["tests/integration/test_check_mode_deploy.py"]
    assert check_mode["test_mutating_classifies_requests"] == []  # uses no fixture: free to go anywhere
    monitoring = of("tests/unit/test_monitoring.py")
    assert monitoring["test_alert_rules_parse[plain]"] == ["tests/unit/test_monitoring.py"]
    assert monitoring["test_dashboard_references_only_metrics_that_exist"] == ["tests/unit/test_monitoring.py"]
    # two modules of the same name (unit and integration) are two groups, not one
    for module in ("tests/unit/test_lb_controller.py", "tests/integration/test_lb_controller.py"):
        assert [module] in of(module).values(), of(module)
    # explicit groups are kept, not joined with another: the shared stand-ins, the first start
    assert set(map(tuple, of("tests/integration/test_faults.py").values())) == {("standins",)}
    assert set(map(tuple, of("tests/integration/test_first_start.py").values())) == {("first_start",)}
    # a module without module-scoped fixtures of its own is spread as before
    assert set(map(tuple, of("tests/unit/test_privatelink_filters.py").values())) == {()}
