"""The generated bash script run for real against a stateful stand-in for ``az`` (tests/unit/fake_az.py): it creates
what the plan says, a re-run creates nothing, a replication delay is retried, and a tenant that fails does not stop
the others. The secret goes to a 0600 file and never to the terminal."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from test_provision_scripts import CONFIG, WORKLOAD, A, B, C, run

FAKE_AZ = Path(__file__).resolve().parent / "fake_az.py"
MANAGED = "0a0a0a0a-1111-2222-3333-444444444444"
EXISTING_APP = "0b0b0b0b-1111-2222-3333-444444444444"

pytestmark = pytest.mark.slow


class World:
    def __init__(self, tmp: Path, config_text: str = CONFIG) -> None:
        self.tmp = tmp
        self.state_file = tmp / "az-state.json"
        self.bin = tmp / "bin"
        self.bin.mkdir()
        (self.bin / "az").write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE_AZ}" "$@"\n')
        (self.bin / "sleep").write_text("#!/bin/sh\nexit 0\n")  # the retry waits are not what is tested
        for tool in ("az", "sleep"):
            (self.bin / tool).chmod(0o755)
        tenants: dict[str, Any] = {
            B: {"apps": [], "sps": [{"id": "mi-sp", "appId": MANAGED}], "roles": [], "assignments": [], "graph": []},
            C: {"apps": [{"appId": EXISTING_APP, "displayName": "tailspin-connector", "passwords": [], "certs": [],
                          "federated": []}], "sps": [], "roles": [], "assignments": [], "graph": []},
        }
        self.write({"tenant": None, "fail_login": [], "assignment_failures": 0, "calls": [], "tenants": tenants})
        config = tmp / "config.toml"
        config.write_text(config_text, encoding="utf-8")
        code, script, err = run("script", "--shell", "bash", "-c", str(config), *WORKLOAD)
        assert code == 0, err
        self.script = tmp / "provision.sh"
        self.script.write_text(script, encoding="utf-8")

    def write(self, state: dict[str, Any]) -> None:
        self.state_file.write_text(json.dumps(state))

    def state(self) -> dict[str, Any]:
        return dict(json.loads(self.state_file.read_text()))

    def run(self) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PATH": f"{self.bin}:{os.environ['PATH']}", "FAKE_AZ_STATE": str(self.state_file),
               "OUT_DIR": str(self.tmp)}
        return subprocess.run(["bash", str(self.script)], capture_output=True, text=True, env=env, timeout=120,
                              check=False)


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> World:
    for name in list(os.environ):
        if name.startswith(("CONTOSO_", "FABRIKAM_", "TAILSPIN_")):
            monkeypatch.delenv(name)
    return World(tmp_path)


def test_the_script_creates_the_plan_and_a_rerun_creates_nothing(world: World) -> None:
    first = world.run()
    assert first.returncode == 0, first.stderr
    state = world.state()
    contoso, fabrikam, tailspin = (state["tenants"][t] for t in (A, B, C))
    (app,) = contoso["apps"]
    assert app["displayName"] == "sentinel-signl4" and len(contoso["sps"]) == 1
    (secret,) = app["passwords"]
    secret_file = world.tmp / f"sentinel-signl4-{A[:8]}.secret"
    assert secret_file.read_text().strip() == secret["value"]
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert secret["value"] not in first.stdout + first.stderr
    (role,) = contoso["roles"]
    assert "Microsoft.OperationalInsights/workspaces/query/SecurityAlert/read" in role["definition"]["Actions"]
    assert contoso["assignments"] == [{
        "principal": contoso["sps"][0]["id"], "role": "sentinel-signl4 contoso",
        "scope": f"{role['definition']['AssignableScopes'][0]}/providers/Microsoft.OperationalInsights/workspaces/"
                 "law-contoso"}]
    assert {g["appRoleId"] for g in contoso["graph"]} == {"approle-User.Read.All",
                                                          "approle-SecurityIncident.ReadWrite.All"}
    assert fabrikam["apps"] == [] and [a["principal"] for a in fabrikam["assignments"]] == ["mi-sp"]
    assert [g["principalId"] for g in fabrikam["graph"]] == ["mi-sp"]
    assert [f["subject"] for f in tailspin["apps"][0]["federated"]] == ["system:serviceaccount:signl4:connector"]
    assert tailspin["apps"][0]["passwords"] == []
    assert "OK      tenant " + C in first.stderr

    calls = len(state["calls"])
    second = world.run()
    assert second.returncode == 0, second.stderr
    again = world.state()
    changes = [c for c in again["calls"][calls:] if not c.split(" ", 1)[1].startswith("update role")]
    assert changes == [], "a re-run created something"
    assert again["tenants"][A]["apps"] == state["tenants"][A]["apps"]


def test_a_role_assignment_refused_during_replication_is_retried(world: World) -> None:
    state = world.state()
    state["assignment_failures"] = 3
    world.write(state)
    result = world.run()
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("role assignment not accepted yet") == 3
    assert len(world.state()["tenants"][A]["assignments"]) == 1


def test_a_failing_tenant_is_reported_and_the_others_are_provisioned(world: World) -> None:
    state = world.state()
    state["fail_login"] = [A]
    world.write(state)
    result = world.run()
    assert result.returncode == 1
    after = world.state()["tenants"]
    assert A not in after  # its login failed: nothing was done there
    assert len(after[B]["assignments"]) == 1 and len(after[C]["assignments"]) == 1
    summary = result.stderr.split("Summary:")[1]
    assert f"FAILED  tenant {A}" in summary and f"OK      tenant {B}" in summary and f"OK      tenant {C}" in summary


def test_a_tenant_in_a_sovereign_cloud_is_provisioned_in_that_cloud(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("CONTOSO_", "FABRIKAM_", "TAILSPIN_")):
            monkeypatch.delenv(name)
    gov = CONFIG.replace(f'tenant_id = "{A}"', f'tenant_id = "{A}"\ncloud = "AzureUSGovernment"')
    world = World(tmp_path, gov)
    assert "ensure_login 11111111-2222-3333-4444-555555555555 AzureUSGovernment" in world.script.read_text()
    result = world.run()
    assert result.returncode == 0, result.stderr
    calls = world.state()["calls"]
    # The CLI switches to the tenant's cloud before signing in there, and back for the public-cloud tenants; the
    # Graph permission of contoso-xdr goes to the US Government Graph endpoint (the fake refuses any other there).
    switches = [c for c in calls if c.startswith("cloud set")]
    assert switches == ["cloud set AzureUSGovernment", "cloud set AzureCloud"]
    assert any(c.startswith(f"{A} grant") for c in calls)
    assert calls.index("cloud set AzureCloud") > max(i for i, c in enumerate(calls) if c.startswith(A))
