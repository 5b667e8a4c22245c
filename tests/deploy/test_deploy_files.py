"""deploy/: the container image, compose.yaml, the Kubernetes base and the systemd unit are checked by the tools
that exist here (hadolint, kubernetes-validate, systemd-analyze) and their configs by our own validator."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from deploy_support import DEPLOY, ROOT, with_secret_files

from sentinel_signl4.config import parse_config

BIN = Path(sys.executable).parent
DOCKERFILE = DEPLOY / "Dockerfile"
K8S = DEPLOY / "kubernetes" / "base"
UNIT = DEPLOY / "systemd" / "sentinel-signl4.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def hadolint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "hadolint"), "--failure-threshold", "style", "--no-color", str(path)],
                          capture_output=True, text=True, timeout=60, check=False)


def stages(text: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuations joined), grouped by build stage."""
    joined = re.sub(r"\\\n\s*", " ", text)
    result: list[list[str]] = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(line)
    return result


# -- container image -----------------------------------------------------------------------------------------
def test_hadolint_passes_on_the_dockerfile() -> None:
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_would_catch_a_careless_dockerfile(tmp_path: Path) -> None:
    careless = tmp_path / "Dockerfile"
    careless.write_text("FROM python\nRUN pip install sentinel-signl4\nCMD sentinel-signl4 run\n", encoding="utf-8")
    result = hadolint(careless)
    assert result.returncode != 0
    assert "DL3006" in result.stdout and "DL3042" in result.stdout  # untagged image, pip cache kept


def test_dockerfile_is_multi_stage_slim_non_root_with_volume_healthcheck_and_labels() -> None:
    build, final = stages(DOCKERFILE.read_text(encoding="utf-8"))
    assert build[0].endswith(" AS build")
    text = " ".join(final)
    assert "ARG PYTHON_IMAGE=python:3.12-slim-bookworm" in DOCKERFILE.read_text(encoding="utf-8")
    assert "COPY --from=build /opt/sentinel-signl4 /opt/sentinel-signl4" in final
    users = [i for i in final if i.startswith("USER ")]
    assert users == ["USER 10001:10001"]  # numeric, so runAsNonRoot can check it
    assert 'VOLUME ["/var/lib/sentinel-signl4"]' in final
    assert "STATE_DIRECTORY=/var/lib/sentinel-signl4" in text
    assert "PYTHONDONTWRITEBYTECODE=1" in text  # read-only root filesystem
    [health] = [i for i in final if i.startswith("HEALTHCHECK ")]
    assert "http://127.0.0.1:8080/healthz" in health
    assert "STOPSIGNAL SIGTERM" in final
    assert 'ENTRYPOINT ["sentinel-signl4"]' in final  # exec form: the connector itself gets SIGTERM
    for label in ("title", "description", "version", "licenses", "source"):
        assert f"org.opencontainers.image.{label}=" in text


@pytest.mark.slow
def test_the_dockerfiles_install_steps_work_in_a_clean_virtualenv(tmp_path: Path) -> None:
    """Copies what the build stage COPYs, runs its RUN lines with the image's paths mapped to temporary ones, and
    runs the installed command: the image's install cannot silently break."""
    build = stages(DOCKERFILE.read_text(encoding="utf-8"))[0]
    src, venv = tmp_path / "src", tmp_path / "opt"
    src.mkdir()
    for instruction in build:
        if instruction.startswith("COPY "):
            *sources, target = instruction.split()[1:]
            for name in sources:
                origin = ROOT / name
                if origin.is_dir():
                    shutil.copytree(origin, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
                else:
                    shutil.copy2(origin, src / name)
            assert target in {"./", "./src"}
    runs = [i.removeprefix("RUN ") for i in build if i.startswith("RUN ")]
    assert any("pip install" in r for r in runs)
    for command in runs:
        mapped = command.replace("/opt/sentinel-signl4", str(venv)).replace('"/src', f'"{src}')
        mapped = re.sub(r"^python ", f"{sys.executable} ", mapped)
        result = subprocess.run(["/bin/sh", "-c", mapped], cwd=src, capture_output=True, text=True, timeout=900,
                                check=False, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        assert result.returncode == 0, mapped + "\n" + result.stdout + result.stderr
    version = subprocess.run([str(venv / "bin" / "sentinel-signl4"), "--version"], capture_output=True, text=True,
                             timeout=60, check=False)
    assert version.returncode == 0 and version.stdout.startswith("sentinel-signl4 "), version.stderr


def test_compose_runs_two_replicas_on_postgres_read_only(tmp_path: Path) -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    connector, postgres = compose["services"]["connector"], compose["services"]["postgres"]
    assert connector["deploy"]["replicas"] == 2
    assert connector["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert "healthcheck" in postgres
    assert connector["read_only"] is True and "/tmp" in connector["tmpfs"]
    assert connector["build"]["dockerfile"] == "deploy/Dockerfile"
    for name in connector["secrets"]:
        assert compose["secrets"][name]["file"] == f"./secrets/{name}"
    config_text = (DEPLOY / "config.compose.toml").read_text(encoding="utf-8")
    referenced = set(re.findall(r"\$\{file:/run/secrets/([^}]+)\}", config_text))
    assert referenced <= set(connector["secrets"])
    cfg = parse_config(with_secret_files(config_text, tmp_path), source="config.compose.toml", env={})
    assert cfg.store.url.startswith("postgresql://") and cfg.server.host == "0.0.0.0"


# -- Kubernetes ----------------------------------------------------------------------------------------------
def k8s_resources() -> list[Path]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    return [K8S / name for name in kustomization["resources"]]


def test_kustomization_lists_every_manifest() -> None:
    listed = {p.name for p in k8s_resources()}
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


@pytest.mark.parametrize("version", ["1.29.0", "1.37.0"])
def test_kubernetes_manifests_validate_against_the_schemas(version: str) -> None:
    result = subprocess.run([str(BIN / "kubernetes-validate"), "--strict", "-k", version,
                             *map(str, k8s_resources())], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed") == len(k8s_resources()), result.stdout


def test_kubernetes_validate_rejects_a_misspelt_field(tmp_path: Path) -> None:
    bad = tmp_path / "deployment.yaml"
    bad.write_text((K8S / "deployment.yaml").read_text().replace("readOnlyRootFilesystem", "readOnlyRootFileSystem"))
    result = subprocess.run([str(BIN / "kubernetes-validate"), "--strict", str(bad)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode != 0 and "readOnlyRootFileSystem" in result.stdout + result.stderr


def test_deployment_has_replicas_probes_identity_and_a_locked_down_container(tmp_path: Path) -> None:
    docs = {p.stem: yaml.safe_load(p.read_text(encoding="utf-8")) for p in k8s_resources()}
    deployment = docs["deployment"]
    pod = deployment["spec"]["template"]
    [container] = pod["spec"]["containers"]
    assert deployment["spec"]["replicas"] == 2
    assert pod["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert pod["spec"]["serviceAccountName"] == docs["serviceaccount"]["metadata"]["name"]
    assert "azure.workload.identity/client-id" in docs["serviceaccount"]["metadata"]["annotations"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"] and pod["spec"]["securityContext"]["runAsNonRoot"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert {"/tmp", "/var/lib/sentinel-signl4", "/etc/sentinel-signl4", "/run/secrets/sentinel-signl4"} <= mounts
    assert docs["poddisruptionbudget"]["spec"]["minAvailable"] == 1
    config_text = docs["configmap"]["data"]["config.toml"]
    secret_dir = tmp_path / "run" / "secrets"
    text = with_secret_files(config_text.replace("/run/secrets/sentinel-signl4/", "/run/secrets/"), secret_dir)
    token = tmp_path / "azure-identity-token"
    token.write_text("eyJ.fake.jwt", encoding="utf-8")
    cfg = parse_config(text, source="configmap.yaml",
                       env={"AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
                            "AZURE_FEDERATED_TOKEN_FILE": str(token)})
    assert cfg.connectors[0].azure.credential.kind == "workload_identity"


# -- systemd -------------------------------------------------------------------------------------------------
@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_passes_without_any_warning(tmp_path: Path) -> None:
    """verify checks that ExecStart is executable, so the venv prefix is pointed at this environment's."""
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/sentinel-signl4", sys.prefix), encoding="utf-8")
    assert SYSTEMD_ANALYZE is not None
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0 and result.stdout + result.stderr == "", result.stdout + result.stderr


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_reports_an_unknown_directive(tmp_path: Path) -> None:
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/sentinel-signl4", sys.prefix)
                    .replace("NoNewPrivileges=yes", "NoNewPrivilege=yes"), encoding="utf-8")
    assert SYSTEMD_ANALYZE is not None
    result = subprocess.run([SYSTEMD_ANALYZE, "verify", str(unit)], capture_output=True, text=True, timeout=120,
                            check=False)
    assert "Unknown key" in result.stderr


def test_unit_has_install_user_directories_and_hardening() -> None:
    sections: dict[str, dict[str, list[str]]] = {}
    current = ""
    for line in UNIT.read_text(encoding="utf-8").splitlines():
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = {}
        elif "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            sections[current].setdefault(key, []).append(value)
    service = sections["Service"]
    assert sections["Install"]["WantedBy"] == ["multi-user.target"]
    assert service["User"] == ["sentinel-signl4"]
    assert service["StateDirectory"] == ["sentinel-signl4"] and service["ConfigurationDirectory"] == ["sentinel-signl4"]
    assert service["EnvironmentFile"] == ["/etc/sentinel-signl4/secrets.env"]
    for key, value in {"ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
                       "ProtectHome": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": ""}.items():
        assert service[key] == [value], key
