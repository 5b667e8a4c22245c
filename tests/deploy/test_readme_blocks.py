"""README "Running it for real", followed literally: its shell blocks run here with the host's directories mapped
under a temporary root, and with stand-ins only for what changes the machine itself (useradd, systemctl, file
ownership). Blocks for docker, kubectl and az cannot run here; the files they name must exist."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_support import DEPLOY, ROOT

README = ROOT / "README.md"
SHIMS = r'''
set -euo pipefail
useradd() { echo "useradd $*" >> "$SHIM_LOG"; }
systemctl() { echo "systemctl $*" >> "$SHIM_LOG"; }
install() {  # ownership needs the user useradd would have created; modes and directories are real
  local args=()
  while (($#)); do case "$1" in -o|-g) shift 2 ;; *) args+=("$1"); shift ;; esac; done
  command install "${args[@]}"
}
'''


def running_it_for_real() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("## Running it for real")
    return text[start:text.index("\n## ", start + 1)]


def sh_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", running_it_for_real(), re.DOTALL)


def block_with(word: str) -> str:
    [block] = [b for b in sh_blocks() if word in b]
    return block


def mapped(block: str, root: Path, source: Path) -> str:
    for path in ("/opt/sentinel-signl4", "/etc/sentinel-signl4", "/var/lib/sentinel-signl4", "/etc/systemd/system"):
        block = block.replace(path, f"{root}{path}")
    return block.replace("/path/to/sentinel-signl4", str(source))


def source_copy(target: Path) -> Path:
    for name in ("pyproject.toml", "README.md", "LICENSE", "CHANGELOG.md"):
        shutil.copy2(ROOT / name, target / name)
    shutil.copytree(ROOT / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(DEPLOY, target / "deploy", ignore=shutil.ignore_patterns("config.toml", "secrets"))
    return target


def run_block(block: str, root: Path, source: Path, log: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SHIM_LOG": str(log), "PIP_DISABLE_PIP_VERSION_CHECK": "1",
           "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}
    return subprocess.run(["/bin/bash", "-c", SHIMS + mapped(block, root, source)], cwd=root, env=env,
                          capture_output=True, text=True, timeout=900, check=False)


def test_readme_installs_like_the_container_image() -> None:
    readme = [line for line in block_with("useradd").splitlines() if "pip install" in line]
    dockerfile = [line.removeprefix("RUN ") for line in (DEPLOY / "Dockerfile").read_text().splitlines()
                  if line.startswith("RUN ") and "pip install" in line]
    assert len(readme) == 1 and len(dockerfile) == 1
    normalised = readme[0].replace("python3 ", "python ", 1).replace("/path/to/sentinel-signl4", "/src")
    assert normalised == dockerfile[0]


@pytest.mark.slow
def test_install_and_systemd_blocks_work_when_followed_literally(tmp_path: Path) -> None:
    root, log = tmp_path / "host", tmp_path / "shim.log"
    (root / "etc" / "systemd" / "system").mkdir(parents=True)  # exists on every systemd host
    (tmp_path / "src").mkdir()
    source = source_copy(tmp_path / "src")
    install = run_block(block_with("useradd"), root, source, log)
    assert install.returncode == 0, install.stdout + install.stderr
    assert re.search(r"^sentinel-signl4 \S+ \(Python ", install.stdout, re.MULTILINE)  # the --version line
    config = root / "etc/sentinel-signl4/config.toml"
    example = subprocess.run([str(root / "opt/sentinel-signl4/bin/sentinel-signl4"), "config", "example"],
                             capture_output=True, text=True, timeout=60, check=True).stdout
    assert config.read_text(encoding="utf-8") == example
    assert stat.S_IMODE((root / "etc/sentinel-signl4/secrets.env").stat().st_mode) == 0o640
    assert stat.S_IMODE((root / "var/lib/sentinel-signl4").stat().st_mode) == 0o750
    systemd = run_block(block_with("systemctl"), root, source, log)
    assert systemd.returncode == 0, systemd.stdout + systemd.stderr
    installed = root / "etc/systemd/system/sentinel-signl4.service"
    assert installed.read_text() == (DEPLOY / "systemd" / "sentinel-signl4.service").read_text()
    calls = log.read_text().splitlines()
    assert calls[0].startswith("useradd --system") and calls[0].endswith(" sentinel-signl4")
    assert calls[1:3] == ["systemctl daemon-reload", "systemctl enable --now sentinel-signl4"]


def test_container_and_kubernetes_blocks_name_files_that_exist() -> None:
    docker, kubernetes = block_with("docker build"), block_with("kubectl")
    for path in re.findall(r"(deploy/[\w./-]+)", docker):
        if path != "deploy/config.toml" and path != "deploy/secrets":
            assert (ROOT / path).exists(), path
    [kustomize] = re.findall(r"apply -k /path/to/sentinel-signl4/(\S+)", kubernetes)
    assert (ROOT / kustomize / "kustomization.yaml").is_file()
    text = running_it_for_real()
    for name in ("postgres_password", "signl4_webhook_url", "signl4_api_key", "signl4_webhook_token"):
        assert f"--from-file={name}" in kubernetes
        assert f"/run/secrets/sentinel-signl4/{name}" in (DEPLOY / "kubernetes/base/configmap.yaml").read_text()
    assert "azure.workload.identity/client-id" in text
