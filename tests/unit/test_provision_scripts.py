"""``provision plan`` and ``provision script``: per tenant and identity, exactly the steps the configuration needs,
as idempotent bash (Azure CLI) and PowerShell (Az + Microsoft.Graph) scripts; the text is reviewed as a snapshot
(``UPDATE_SNAPSHOTS=1`` to accept a change) and the bash script must parse."""

from __future__ import annotations

import difflib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sentinel_signl4.cli import app
from sentinel_signl4.provision.apply_cli import by_cloud
from sentinel_signl4.provision.plan import TenantPlan

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"
A, B, C = ("11111111-2222-3333-4444-555555555555", "22222222-3333-4444-5555-666666666666",
           "33333333-4444-5555-6666-777777777777")
SUB = "66666666-7777-8888-9999-000000000000"

# Three customer tenants; no secret is set anywhere (every ${ENV} below is unset).
CONFIG = f'''
[[connectors]]
name = "contoso"
[connectors.azure]
tenant_id = "{A}"
subscription_id = "{SUB}"
resource_group = "rg-contoso"
workspace_name = "law-contoso"
workspace_id = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
[connectors.azure.credential]
client_id = "${{CONTOSO_CLIENT_ID}}"
client_secret = "${{CONTOSO_SECRET}}"
[connectors.signl4]
webhook_url = "${{CONTOSO_S4_WEBHOOK}}"
api_key = "${{CONTOSO_S4_KEY}}"

[[connectors]]
name = "contoso-xdr"
source = "graph"
[connectors.azure]
tenant_id = "{A}"
[connectors.azure.credential]
client_id = "${{CONTOSO_CLIENT_ID}}"
client_secret = "${{CONTOSO_SECRET}}"
[connectors.signl4]
webhook_url = "${{CONTOSO_S4_WEBHOOK}}"

[[connectors]]
name = "fabrikam"
[connectors.azure]
tenant_id = "{B}"
subscription_id = "{SUB}"
resource_group = "rg-fabrikam"
workspace_name = "law-fabrikam"
[connectors.azure.credential]
kind = "managed_identity"
client_id = "0a0a0a0a-1111-2222-3333-444444444444"
[connectors.signl4]
webhook_url = "${{FABRIKAM_S4_WEBHOOK}}"
[connectors.sync]
webhook_token = "${{FABRIKAM_TOKEN}}"

[[connectors]]
name = "tailspin"
[connectors.azure]
tenant_id = "{C}"
subscription_id = "{SUB}"
resource_group = "rg-tailspin"
workspace_name = "law-tailspin"
[connectors.azure.credential]
kind = "workload_identity"
client_id = "0b0b0b0b-1111-2222-3333-444444444444"
[connectors.signl4]
webhook_url = "${{TAILSPIN_S4_WEBHOOK}}"
[connectors.sync]
owner_map = {{ "a@tailspin.example" = "{C}" }}
'''
WORKLOAD = ["--oidc-issuer", "https://oidc.prod-aks.azure.com/abc/", "--service-account", "signl4/connector"]


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in list(os.environ):
        if name.startswith(("CONTOSO_", "FABRIKAM_", "TAILSPIN_")):
            monkeypatch.delenv(name)
    path = tmp_path / "config.toml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["provision", *args])
    return result.exit_code, result.stdout, result.stderr


def assert_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("UPDATE_SNAPSHOTS") == "1":
        path.write_text(actual, encoding="utf-8")
        return
    if not path.exists():
        pytest.fail(f"no snapshot {path.name}; create it with UPDATE_SNAPSHOTS=1 and review it")
    expected = path.read_text(encoding="utf-8")
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                            f"snapshots/{path.name}", "generated now"))
        pytest.fail(f"{name} changed (UPDATE_SNAPSHOTS=1 to accept):\n{diff}", pytrace=False)


def tenant_body(script: str, number: int) -> str:
    match = re.search(rf"^tenant_{number}\(\) \{{\n(.*?)^\}}", script, re.MULTILINE | re.DOTALL)
    assert match, f"no tenant_{number} in the script"
    return match.group(1)


def test_the_plan_shows_each_tenant_identity_role_and_graph_permission(config: Path) -> None:
    code, out, err = run("plan", "-c", str(config), *WORKLOAD)
    assert code == 0, err
    assert_snapshot("provision_plan.txt", out)
    assert out.count("Tenant ") == 3
    assert 'App registration "sentinel-signl4" and its service principal (connectors: contoso, contoso-xdr)' in out
    assert "Managed identity 0a0a0a0a-1111-2222-3333-444444444444 (connectors: fabrikam)" in out


def test_the_bash_script_parses_and_matches_its_snapshot(config: Path, tmp_path: Path) -> None:
    code, out, err = run("script", "--shell", "bash", "-c", str(config), *WORKLOAD)
    assert code == 0, err
    assert_snapshot("provision_script.sh", out)
    script = tmp_path / "provision.sh"
    script.write_text(out, encoding="utf-8")
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stderr


def test_the_powershell_script_matches_its_snapshot_and_parses_where_pwsh_exists(config: Path, tmp_path: Path) -> None:
    code, out, err = run("script", "--shell", "powershell", "-c", str(config), *WORKLOAD)
    assert code == 0, err
    assert_snapshot("provision_script.ps1", out)
    pwsh = shutil.which("pwsh")
    if pwsh is None:
        pytest.skip("pwsh (PowerShell 7) is not installed on this machine: the PowerShell syntax check cannot run; "
                    "the script's text is still checked against its reviewed snapshot above")
    script = tmp_path / "provision.ps1"
    script.write_text(out, encoding="utf-8")
    parse = ("$e = $null; [System.Management.Automation.Language.Parser]::ParseFile("
             f"'{script}', [ref]$null, [ref]$e) | Out-Null; if ($e) {{ $e; exit 1 }}")
    checked = subprocess.run([pwsh, "-NoProfile", "-Command", parse], capture_output=True, text=True, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_managed_identity_gets_no_app_registration_secret_or_consent_commands(config: Path) -> None:
    _, out, _ = run("script", "-c", str(config), *WORKLOAD)
    fabrikam = tenant_body(out, 2)
    assert "ensure_app" not in fabrikam and "ensure_secret" not in fabrikam and "ensure_sp" not in fabrikam
    assert "az ad sp show --id \"$app_id\"" in fabrikam
    assert "ensure_graph_permission \"$sp_id\" User.Read.All" in fabrikam  # to its service principal
    assert "az ad app permission" not in out and "admin-consent" not in out


def test_one_app_serves_the_connectors_of_a_tenant_with_each_connector_s_role(config: Path) -> None:
    _, out, _ = run("script", "-c", str(config), *WORKLOAD)
    contoso = tenant_body(out, 1)
    assert contoso.count("ensure_app sentinel-signl4") == 1 and contoso.count("ensure_secret") == 1
    assert contoso.count("ensure_role ") == 1  # the Graph connector needs no Azure role
    assert "ensure_graph_permission \"$sp_id\" SecurityIncident.ReadWrite.All" in contoso
    assert "Microsoft.OperationalInsights/workspaces/query/SecurityAlert/read" in contoso
    tailspin = tenant_body(out, 3)
    assert ("ensure_federated \"$app_id\" sentinel-signl4-signl4-connector https://oidc.prod-aks.azure.com/abc/ "
            "system:serviceaccount:signl4:connector") in tailspin
    assert "ensure_secret" not in tailspin and "ensure_graph_permission" not in tailspin
    assert "workspaces/query" not in tailspin  # no workspace GUID: no enrichment query


def test_every_tenant_runs_even_when_an_earlier_one_fails(config: Path) -> None:
    _, out, _ = run("script", "-c", str(config), *WORKLOAD)
    for number in (1, 2, 3):
        assert f"( set -e; tenant_{number} )" in out  # a subshell each: a failure ends that tenant only
    assert "set -e\n" not in out.split("tenant_1() {")[0]  # the script itself does not stop at a failure
    assert out.rstrip().endswith('exit "$status"')


def test_a_secret_expiry_other_than_the_default_is_used(config: Path) -> None:
    _, out, _ = run("script", "-c", str(config), "--secret-days", "90", *WORKLOAD)
    assert "SECRET_DAYS=90\n" in out
    code, _, err = run("script", "-c", str(config), "--secret-days", "900", *WORKLOAD)
    assert code == 2 and "--secret-days: must be between 1 and 730" in err


def test_workload_identity_values_missing_are_all_reported_at_once(config: Path) -> None:
    code, out, err = run("script", "-c", str(config))
    assert code == 2 and out == ""
    assert "--oidc-issuer: required" in err and "--service-account: required" in err


def test_missing_ids_are_reported_at_once_with_their_flags(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.replace(f'subscription_id = "{SUB}"\n', "").replace('resource_group = "rg-fabrikam"\n',
                                                                               ""), encoding="utf-8")
    code, _, err = run("plan", "-c", str(path), *WORKLOAD)
    assert code == 2
    assert err.count("(or pass --subscription)") == 3 and err.count("(or pass --resource-group)") == 1
    code, out, err = run("plan", "-c", str(path), *WORKLOAD, "--subscription", SUB, "--connector", "contoso")
    assert code == 0, err
    assert "law-contoso" in out and "fabrikam" not in out


def test_apply_dry_run_shows_the_plan_and_contacts_nothing(config: Path) -> None:
    code, out, err = run("apply", "-c", str(config), "--dry-run", *WORKLOAD)
    assert code == 0, err
    assert out == run("plan", "-c", str(config), *WORKLOAD)[1]


def test_a_sovereign_cloud_tenant_is_planned_and_scripted_for_its_cloud(tmp_path: Path,
                                                                        config: Path) -> None:
    gov = CONFIG.replace(f'tenant_id = "{A}"', f'tenant_id = "{A}"\ncloud = "AzureUSGovernment"')
    config.write_text(gov, encoding="utf-8")
    code, out, err = run("plan", "-c", str(config), *WORKLOAD)
    assert code == 0, err
    assert f"Tenant {A} (cloud AzureUSGovernment)" in out and f"Tenant {B}\n" in out
    _, script, _ = run("script", "--shell", "powershell", "-c", str(config), *WORKLOAD)
    assert f"Connect-Tenant '{A}' 'AzureUSGovernment' 'USGov'" in script
    assert f"Connect-Tenant '{B}' 'AzureCloud' 'Global'" in script
    _, bash, _ = run("script", "--shell", "bash", "-c", str(config), *WORKLOAD)
    assert "https://graph.microsoft.us" in bash and f"ensure_login {A} AzureUSGovernment" in bash


def test_connectors_of_one_tenant_in_two_clouds_are_refused(config: Path) -> None:
    mixed = CONFIG.replace(f'tenant_id = "{A}"\nsubscription_id', f'tenant_id = "{A}"\ncloud = "AzureChina"\n'
                           "subscription_id", 1)
    config.write_text(mixed, encoding="utf-8")
    code, _, err = run("plan", "-c", str(config), *WORKLOAD)
    assert code != 0
    assert f"tenant {A}: its connectors name different clouds (AzureChina, AzurePublic)" in err


def test_apply_uses_each_cloud_s_endpoints_and_token_scopes() -> None:
    gov = "AzureUSGovernment"
    plans = [TenantPlan(A, (), cloud=gov), TenantPlan(B, ()), TenantPlan(C, (), cloud=gov)]
    groups = by_cloud(plans)
    assert [[p.tenant_id for p in members] for _, members in groups] == [[A, C], [B]]
    gov, public = (cloud for cloud, _ in groups)
    assert (gov.resource_manager, gov.graph) == ("https://management.usgovcloudapi.net", "https://graph.microsoft.us")
    assert gov.scope("graph") == "https://graph.microsoft.us/.default"
    assert gov.authority_host == "https://login.microsoftonline.us"
    assert public.scope("resource_manager") == "https://management.azure.com/.default"
