"""A stateful stand-in for the ``az`` commands the generated provisioning script runs (tests only).

It keeps Entra ID and Azure RBAC state per tenant in a JSON file (``FAKE_AZ_STATE``) and answers exactly the
command lines ``provision/bash.py`` emits, so a test can run the real script twice and look at what exists. Scripted
failures: ``fail_login`` (tenants whose login fails) and ``assignment_failures`` (the next N role assignment
creations fail with PrincipalNotFound, as right after creating a service principal). Every mutating call is logged in
``calls``.
"""

from __future__ import annotations

import json
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"


GRAPH_HOSTS = {"AzureCloud": "graph.microsoft.com", "AzureUSGovernment": "graph.microsoft.us",
               "AzureChinaCloud": "microsoftgraph.chinacloudapi.cn"}


def option(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def quoted(text: str) -> str:
    match = re.search(r"'([^']*)'", text)
    assert match, text
    return match.group(1)


def fail(message: str) -> None:
    print(f"ERROR: {message}", file=sys.stderr)
    sys.exit(1)


def main(args: list[str]) -> None:
    path = Path(os.environ["FAKE_AZ_STATE"])
    state: dict[str, Any] = json.loads(path.read_text())
    tenant = state.get("tenant")
    t: dict[str, Any] = state["tenants"].setdefault(tenant or "", {
        "apps": [], "sps": [], "roles": [], "assignments": [], "graph": []})
    command = " ".join(a for a in args if not a.startswith("-"))[:40]
    out: Any = ""

    def log(what: str) -> None:
        state["calls"].append(f"{tenant} {what}")

    def app(app_id: str) -> dict[str, Any]:
        found = [a for a in t["apps"] if a["appId"] == app_id]
        if not found:
            fail(f"Resource '{app_id}' does not exist")
        return found[0]

    if args[:2] == ["cloud", "show"]:
        out = state.get("cloud", "AzureCloud")
    elif args[:2] == ["cloud", "set"]:
        name = option(args, "--name")
        if name not in ("AzureCloud", "AzureUSGovernment", "AzureChinaCloud", "AzureGermanCloud"):
            fail(f"The cloud '{name}' is not registered.")
        if name != state.get("cloud", "AzureCloud"):
            state["cloud"] = name
            state["tenant"] = None  # switching clouds signs the CLI out of the other cloud's account
            state["calls"].append(f"cloud set {name}")
    elif args[:2] == ["account", "show"]:
        if not tenant:
            fail("Please run 'az login' to setup account.")
        out = tenant
    elif args[0] == "login":
        wanted = option(args, "--tenant")
        if wanted in state["fail_login"]:
            fail(f"AADSTS50020: login to tenant {wanted} refused")
        state["tenant"] = wanted
        state["tenants"].setdefault(wanted, {"apps": [], "sps": [], "roles": [], "assignments": [], "graph": []})
    elif command.startswith("ad app list"):
        name = quoted(option(args, "--filter"))
        out = next((a["appId"] for a in t["apps"] if a["displayName"] == name), "")
    elif command.startswith("ad app create"):
        out = str(uuid.uuid4())
        t["apps"].append({"appId": out, "displayName": option(args, "--display-name"), "passwords": [],
                          "certs": [], "federated": []})
        log(f"create app {out}")
    elif command.startswith("ad app show"):
        out = app(option(args, "--id"))["appId"]
    elif command.startswith("ad sp list"):
        app_id = quoted(option(args, "--filter"))
        out = next((s["id"] for s in t["sps"] if s["appId"] == app_id), "")
    elif command.startswith("ad sp create"):
        app(option(args, "--id"))
        out = str(uuid.uuid4())
        t["sps"].append({"id": out, "appId": option(args, "--id")})
        log(f"create sp {out}")
    elif command.startswith("ad sp show"):
        app_id, query = option(args, "--id"), option(args, "--query")
        if app_id == GRAPH_APP_ID:
            out = f"graph-sp-{tenant}" if query == "id" else f"approle-{quoted(query)}"
        else:
            found = [s for s in t["sps"] if s["appId"] == app_id]
            if not found:
                fail(f"Service principal '{app_id}' doesn't exist")
            out = found[0]["id"]
    elif command.startswith("ad app credential list"):
        name = quoted(option(args, "--query"))
        out = sum(1 for p in app(option(args, "--id"))["passwords"] if p["displayName"] == name)
    elif command.startswith("ad app credential reset"):
        target = app(option(args, "--id"))
        if "--cert" in args:
            target["certs"].append(Path(option(args, "--cert").lstrip("@")).read_text()[:40])
            log("upload certificate")
        else:
            secret = f"secret-{uuid.uuid4()}"
            target["passwords"].append({"displayName": option(args, "--display-name"),
                                        "end": option(args, "--end-date"), "value": secret})
            log("create secret")
            out = secret
    elif command.startswith("ad app federated-credential list"):
        name = quoted(option(args, "--query"))
        out = sum(1 for f in app(option(args, "--id"))["federated"] if f["name"] == name)
    elif command.startswith("ad app federated-credential create"):
        app(option(args, "--id"))["federated"].append(json.loads(option(args, "--parameters")))
        log("create federated credential")
    elif command.startswith("role definition list"):
        name = option(args, "--name")
        out = next((r["id"] for r in t["roles"] if r["definition"]["Name"] == name), "")
    elif command.startswith(("role definition create", "role definition update")):
        definition = json.loads(option(args, "--role-definition"))
        existing = [r for r in t["roles"] if r["definition"]["Name"] == definition["Name"]]
        if command.startswith("role definition create"):
            if existing:
                fail("RoleDefinitionWithSameNameExists")
            t["roles"].append({"id": str(uuid.uuid4()), "definition": definition})
            log(f"create role {definition['Name']}")
        else:
            if not existing:
                fail("Role definition not found")
            existing[0]["definition"] = definition
            log(f"update role {definition['Name']}")
    elif command.startswith("role assignment list"):
        key = (option(args, "--assignee"), option(args, "--role"), option(args, "--scope"))
        out = sum(1 for a in t["assignments"] if (a["principal"], a["role"], a["scope"]) == key)
    elif command.startswith("role assignment create"):
        if state["assignment_failures"] > 0:
            state["assignment_failures"] -= 1
            path.write_text(json.dumps(state))
            fail("(PrincipalNotFound) Principal does not exist in the directory")
        principal, role, scope = option(args, "--assignee-object-id"), option(args, "--role"), option(args, "--scope")
        if not any(r["definition"]["Name"] == role for r in t["roles"]):
            fail("RoleDefinitionDoesNotExist")
        if any((a["principal"], a["role"], a["scope"]) == (principal, role, scope) for a in t["assignments"]):
            fail("(RoleAssignmentExists) The role assignment already exists.")
        t["assignments"].append({"principal": principal, "role": role, "scope": scope})
        log(f"assign {role}")
    elif args[0] == "rest":
        url = option(args, "--url")
        host = url.split("/")[2]
        if host != GRAPH_HOSTS[state.get("cloud", "AzureCloud")]:
            # The real az rest derives the token's resource from the URL among the *current* cloud's endpoints.
            fail(f"Can't derive appropriate Azure AD resource from --url to acquire an access token: {url}")
        principal = url.split("/servicePrincipals/")[1].split("/")[0]
        if option(args, "--method") == "GET":
            role_id = quoted(option(args, "--query"))
            out = sum(1 for g in t["graph"] if g["principalId"] == principal and g["appRoleId"] == role_id)
        else:
            body = json.loads(option(args, "--body"))
            assert body["principalId"] == principal and body["resourceId"] == f"graph-sp-{tenant}", body
            t["graph"].append(body)
            log(f"grant {body['appRoleId']}")
    else:
        fail(f"fake az: unexpected command line: {args}")
    path.write_text(json.dumps(state))
    if out != "":
        print(out)


if __name__ == "__main__":
    main(sys.argv[1:])
