"""The deployment files: Dockerfile, docker compose, Kubernetes manifests, systemd units.

Every ``okr-sync`` command line in them is checked against the real command line
(``--help`` through Typer's runner: the command exists and knows every option used),
the manifests are parsed and their probes, security context and wiring asserted,
the systemd units go through ``systemd-analyze verify`` and the image is built, each
of the last two only where the tool exists here.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from support.paths import REPO

DEPLOY = REPO / "deploy"
DOCKERFILE = REPO / "Dockerfile"
COMPOSE = DEPLOY / "docker-compose.yml"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
#: Where the units expect the install (README "Deploying", systemd).
UNIT_INSTALL_BIN = "/opt/okr-sync/bin/"
#: Read by the command line itself, not a field of Settings.
EXTRA_SETTINGS = frozenset({"OKR_SYNC_LOG_LEVEL"})
HEALTH_URL = re.compile(r"http://127\.0\.0\.1:(\d+)(/[\w/]*)")

runner = CliRunner()


@dataclass(frozen=True)
class Invocation:
    """One ``okr-sync ...`` command line found in a deployment file."""

    source: str
    argv: tuple[str, ...]

    @property
    def args(self) -> list[str]:
        return list(self.argv[1:])


# --- reading the files -------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, rest) pairs, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in DOCKERFILE.read_text().splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        logical.append(pending + stripped)
        pending = ""
    pairs = []
    for text in logical:
        keyword, _, rest = text.partition(" ")
        pairs.append((keyword.upper(), rest.strip()))
    return pairs


def dockerfile_exec_form(instruction: str) -> list[str]:
    (rest,) = [rest for keyword, rest in dockerfile_instructions() if keyword == instruction]
    value = json.loads(rest)
    assert isinstance(value, list), f"{instruction} is in exec (JSON) form"
    return [str(part) for part in value]


def dockerfile_healthcheck() -> list[str]:
    (rest,) = [rest for keyword, rest in dockerfile_instructions() if keyword == "HEALTHCHECK"]
    _options, marker, command = rest.partition("CMD ")
    assert marker, "HEALTHCHECK runs a command"
    value = json.loads(command)
    assert isinstance(value, list)
    return [str(part) for part in value]


def compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(document, dict)
    return document


def manifests() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(K8S.glob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d is not None)
    return documents


def manifest(kind: str) -> dict[str, Any]:
    (found,) = [d for d in manifests() if d["kind"] == kind]
    return found


def pod_spec(kind: str) -> dict[str, Any]:
    spec = manifest(kind)["spec"]
    if kind == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    pod = spec["template"]["spec"]
    assert isinstance(pod, dict)
    return pod


def unit(name: str) -> dict[str, dict[str, list[str]]]:
    """A systemd unit as section -> key -> values (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in (SYSTEMD / name).read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", ";")):
            continue
        if stripped.startswith("["):
            current = sections.setdefault(stripped.strip("[]"), {})
            continue
        key, _, value = stripped.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def service_units() -> list[str]:
    return sorted(path.name for path in SYSTEMD.glob("*.service"))


def option_value(argv: list[str] | tuple[str, ...], option: str) -> str:
    index = list(argv).index(option)
    return argv[index + 1]


# --- every okr-sync command line --------------------------------------------------


def invocations() -> list[Invocation]:
    found = []
    entrypoint = dockerfile_exec_form("ENTRYPOINT")
    found.append(Invocation("Dockerfile", tuple(entrypoint + dockerfile_exec_form("CMD"))))
    for name, service in compose()["services"].items():
        if "build" in service:
            # Services built from the Dockerfile run its ENTRYPOINT with `command` as arguments.
            assert "entrypoint" not in service, name
            found.append(Invocation(f"compose:{name}", tuple(entrypoint + service["command"])))
    for kind in ("Deployment", "CronJob"):
        spec = pod_spec(kind)
        for container in spec.get("initContainers", []) + spec["containers"]:
            argv = container.get("command", []) + container.get("args", [])
            found.append(Invocation(f"k8s:{kind}:{container['name']}", tuple(argv)))
    for name in service_units():
        service = unit(name)["Service"]
        for key in ("ExecStartPre", "ExecStart"):
            for line in service.get(key, []):
                argv = shlex.split(line.lstrip("-@:+!"))
                assert argv[0].startswith(UNIT_INSTALL_BIN), f"{name}: {line}"
                found.append(Invocation(f"systemd:{name}:{key}", ("okr-sync", *argv[1:])))
    return found


INVOCATIONS = invocations()


def test_invocations_given_deploy_files_find_every_command_line() -> None:
    sources = {invocation.source for invocation in INVOCATIONS}
    assert sources == {
        "Dockerfile",
        "compose:migrate",
        "compose:serve",
        "k8s:Deployment:db-upgrade",
        "k8s:Deployment:okr-sync",
        "k8s:CronJob:db-upgrade",
        "k8s:CronJob:okr-sync",
        "systemd:okr-sync.service:ExecStartPre",
        "systemd:okr-sync.service:ExecStart",
        "systemd:okr-sync-serve.service:ExecStartPre",
        "systemd:okr-sync-serve.service:ExecStart",
    }
    assert all(invocation.argv[0] == "okr-sync" for invocation in INVOCATIONS)


def assert_valid_command(invocation: Invocation) -> None:
    """The command exists (its ``--help`` exits 0) and lists every option the line uses."""
    # The one place that knows where the app lives.
    from okr_sync.cli.main import app

    result = runner.invoke(app, [*invocation.args, "--help"])

    assert result.exit_code == 0, result.output
    known = set(re.findall(r"--[a-z][a-z-]*", result.output))
    used = {arg for arg in invocation.args if arg.startswith("--")}
    assert used <= known, f"{invocation.source}: unknown options {sorted(used - known)}"


@pytest.mark.parametrize("invocation", INVOCATIONS, ids=lambda i: i.source)
def test_command_line_given_deploy_invocation_is_a_valid_okr_sync_command(
    invocation: Invocation,
) -> None:
    assert_valid_command(invocation)


def readme_deploying() -> str:
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Deploying\n", 1)[1]
    return section.split("\n## ", 1)[0]


#: How the README's Deploying section spells an okr-sync command line.
README_COMMANDS = (
    re.compile(r"`okr-sync ([^`]+)`"),
    re.compile(r"okr-sync:0\.1\.0 ([a-z][^\n`\\]*)"),
    re.compile(r"/opt/okr-sync/bin/okr-sync ([a-z][^\n`]*)"),
    re.compile(r"docker exec okr-sync okr-sync ([^\n`]+)"),
)


def readme_invocations() -> list[Invocation]:
    section = readme_deploying()
    found = []
    for pattern in README_COMMANDS:
        for match in pattern.finditer(section):
            args = shlex.split(match.group(1), comments=True)
            found.append(Invocation(f"README:{match.group(0)}", ("okr-sync", *args)))
    return found


def test_readme_given_deploying_section_names_existing_deploy_files() -> None:
    paths = set(re.findall(r"`(deploy/[\w./-]+)`", readme_deploying()))

    assert paths
    assert [path for path in sorted(paths) if not (REPO / path).exists()] == []


def test_readme_given_deploying_section_finds_its_command_lines() -> None:
    commands = {" ".join(invocation.args) for invocation in readme_invocations()}

    assert {"db upgrade", "run --dry-run", "status", "resync --kr CO-1.KR1"} <= commands


@pytest.mark.parametrize("invocation", readme_invocations(), ids=lambda i: i.source)
def test_command_line_given_readme_deploying_invocation_is_a_valid_okr_sync_command(
    invocation: Invocation,
) -> None:
    assert_valid_command(invocation)


# --- Dockerfile and compose --------------------------------------------------------


def test_dockerfile_given_stages_builds_slim_multi_stage_with_postgres_extra() -> None:
    instructions = dockerfile_instructions()
    bases = [rest for keyword, rest in instructions if keyword == "FROM"]
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")

    assert len(bases) >= 2
    assert all("-slim" in base for base in bases)
    assert "pip install '.[postgres]'" in runs


def test_dockerfile_given_user_runs_as_a_numeric_non_root_user() -> None:
    (user,) = [rest for keyword, rest in dockerfile_instructions() if keyword == "USER"]
    uid = user.split(":")[0]

    assert uid.isdigit() and int(uid) != 0
    assert int(uid) == pod_spec("Deployment")["securityContext"]["runAsUser"]


def test_dockerfile_given_default_command_serves_where_the_healthcheck_looks() -> None:
    command = dockerfile_exec_form("ENTRYPOINT") + dockerfile_exec_form("CMD")
    match = HEALTH_URL.search(" ".join(dockerfile_healthcheck()))

    assert command[:2] == ["okr-sync", "serve"]
    assert match is not None
    assert match.group(1) == option_value(command, "--port")
    assert match.group(2) == "/healthz"


def test_compose_given_services_runs_serve_on_postgres_with_healthchecks() -> None:
    services = compose()["services"]
    serve, postgres = services["serve"], services["postgres"]
    environment = serve.get("environment", {})
    plan_mounts = [v.split(":")[1] for v in serve["volumes"] if v.endswith(":ro")]
    match = HEALTH_URL.search(" ".join(serve["healthcheck"]["test"]))

    assert "healthcheck" in postgres
    assert serve["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert serve["env_file"]
    assert environment["OKR_SYNC_PLAN"] in plan_mounts
    assert match is not None
    assert match.group(1) == option_value(serve["command"], "--port")
    assert match.group(2) == "/healthz"


# --- Kubernetes --------------------------------------------------------------------


def test_manifests_given_k8s_folder_hold_the_expected_kinds() -> None:
    kinds = sorted(d["kind"] for d in manifests())

    assert kinds == ["ConfigMap", "CronJob", "Deployment", "Kustomization", "Secret", "Service"]


def test_cronjob_given_manifest_forbids_overlap_and_runs_one_pass() -> None:
    cronjob = manifest("CronJob")
    (container,) = pod_spec("CronJob")["containers"]

    assert cronjob["spec"]["concurrencyPolicy"] == "Forbid"
    assert container["command"][:2] == ["okr-sync", "run"]


def test_deployment_given_manifest_runs_three_serve_replicas_with_probes() -> None:
    deployment = manifest("Deployment")
    (container,) = pod_spec("Deployment")["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    serve_port = int(option_value(container["command"], "--port"))

    assert deployment["spec"]["replicas"] == 3
    assert container["command"][:2] == ["okr-sync", "serve"]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        http_get = container[probe]["httpGet"]
        assert http_get["path"] == path
        assert ports.get(http_get["port"], http_get["port"]) == serve_port


def test_deployment_given_manifest_serves_the_plans_configmap_as_a_folder() -> None:
    spec = pod_spec("Deployment")
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    # serve runs the folder, and db upgrade migrates the store of every plan in it.
    for container in spec["initContainers"] + spec["containers"]:
        env = {e["name"]: e["value"] for e in container.get("env", [])}
        folder = Path(env["OKR_SYNC_PLANS"])
        (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == folder]
        source = volumes[mount["name"]]["configMap"]

        assert source["name"] == manifest("ConfigMap")["metadata"]["name"]
        # Every key a file, and no subPath: Kubernetes then updates the mounted files.
        assert "items" not in source and "subPath" not in mount
        assert "OKR_SYNC_PLAN" not in env
    assert len(manifest("ConfigMap")["data"]) >= 2


@pytest.mark.parametrize("kind", ["Deployment", "CronJob"])
def test_pod_given_manifest_runs_non_root_with_requests_and_secret_settings(kind: str) -> None:
    spec = pod_spec(kind)
    secret = manifest("Secret")

    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    for container in spec.get("initContainers", []) + spec["containers"]:
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        refs = [source["secretRef"]["name"] for source in container["envFrom"]]
        assert refs == [secret["metadata"]["name"]]


def test_cronjob_given_manifest_mounts_a_plan_of_the_configmap_where_okr_sync_plan_points(
) -> None:
    spec = pod_spec("CronJob")
    configmap = manifest("ConfigMap")
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    container = spec["containers"][0]
    plan = Path({e["name"]: e["value"] for e in container["env"]}["OKR_SYNC_PLAN"])
    (mount,) = [m for m in container["volumeMounts"] if Path(m["mountPath"]) == plan.parent]
    source = volumes[mount["name"]]["configMap"]
    (item,) = [item for item in source["items"] if item["path"] == plan.name]

    assert source["name"] == configmap["metadata"]["name"]
    assert item["key"] in configmap["data"]


@pytest.mark.parametrize("key", sorted(manifest("ConfigMap")["data"]))
def test_configmap_given_example_plans_each_is_a_valid_plan(tmp_path: Path, key: str) -> None:
    from okr_sync.cli.main import app

    plan = tmp_path / key
    plan.write_text(manifest("ConfigMap")["data"][key])

    result = runner.invoke(app, ["validate", "--plan", str(plan)])

    assert key.endswith(".yaml")
    assert result.exit_code == 0, result.output


def test_secret_given_settings_points_replicas_at_postgresql() -> None:
    settings = manifest("Secret")["stringData"]

    assert settings["OKR_SYNC_DATABASE_URL"].startswith("postgresql+psycopg://")


def test_service_given_manifest_selects_serve_pods_on_their_http_port() -> None:
    service = manifest("Service")
    template = manifest("Deployment")["spec"]["template"]
    (container,) = template["spec"]["containers"]
    ports = {port["name"] for port in container["ports"]} | {
        port["containerPort"] for port in container["ports"]
    }

    assert service["spec"]["selector"].items() <= template["metadata"]["labels"].items()
    assert {port["targetPort"] for port in service["spec"]["ports"]} <= ports


def deploy_setting_names() -> dict[str, set[str]]:
    names: dict[str, set[str]] = {
        "secret": set(manifest("Secret")["stringData"]),
        "compose": set(compose()["services"]["serve"].get("environment", {})),
    }
    for kind in ("Deployment", "CronJob"):
        names[kind] = {e["name"] for c in pod_spec(kind)["containers"] for e in c.get("env", [])}
    for name in service_units():
        lines = unit(name)["Service"].get("Environment", [])
        names[name] = {line.partition("=")[0] for line in lines}
    names["Dockerfile"] = set(
        re.findall(r"\b(OKR_SYNC_\w+)=", " ".join(
            rest for keyword, rest in dockerfile_instructions() if keyword == "ENV")))
    return names


def test_deploy_files_given_settings_use_only_names_okr_sync_knows() -> None:
    from okr_sync.config.settings import Settings

    known = {f"OKR_SYNC_{field.upper()}" for field in Settings.model_fields} | EXTRA_SETTINGS
    for source, names in deploy_setting_names().items():
        settings = {name for name in names if name.startswith("OKR_SYNC_")}
        assert settings <= known, f"{source}: unknown settings {sorted(settings - known)}"


# --- systemd -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["okr-sync.service", "okr-sync-serve.service"])
def test_unit_given_service_is_hardened(name: str) -> None:
    service = unit(name)["Service"]

    for key, value in (("DynamicUser", "yes"), ("ProtectSystem", "strict"),
                       ("ProtectHome", "yes"), ("NoNewPrivileges", "yes"),
                       ("StateDirectory", "okr-sync")):
        assert service[key] == [value], key
    assert service["CapabilityBoundingSet"] == [""]


def test_unit_given_timer_starts_one_pass_that_treats_lock_busy_as_success() -> None:
    timer = unit("okr-sync.timer")
    service = unit("okr-sync.service")["Service"]

    assert timer["Timer"]["Unit"] == ["okr-sync.service"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    assert service["Type"] == ["oneshot"]
    assert "75" in service["SuccessExitStatus"][0].split()


def test_units_given_systemd_analyze_pass_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    okr_sync = shutil.which("okr-sync")
    if okr_sync is None:
        pytest.skip("no okr-sync console script on PATH to stand in for the install")
    # verify checks that ExecStart's file exists: point it at this machine's okr-sync.
    install_bin = str(Path(okr_sync).parent) + "/"
    for path in SYSTEMD.iterdir():
        (tmp_path / path.name).write_text(path.read_text().replace(UNIT_INSTALL_BIN, install_bin))

    result = subprocess.run(
        [analyze, "verify", "--man=no", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True, text=True, timeout=120, check=False,
    )

    # verify exits 0 on mere warnings (an unknown key), so its messages about our units count.
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "okr-sync" in line]
    assert result.returncode == 0, result.stdout + result.stderr
    assert ours == []


# --- building the image ------------------------------------------------------------


@pytest.mark.slow
def test_dockerfile_given_docker_builds_an_image_running_okr_sync() -> None:
    docker = shutil.which("docker")
    if docker is None:
        pytest.skip("docker is not installed here")
    info = subprocess.run([docker, "info"], capture_output=True, timeout=30, check=False)
    if info.returncode != 0:
        pytest.skip("docker is installed but no Docker daemon answers")
    tag = "okr-sync:deploy-test"

    build = subprocess.run([docker, "build", "-t", tag, str(REPO)],
                           capture_output=True, text=True, timeout=590, check=False)
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    usage = subprocess.run([docker, "run", "--rm", tag, "--help"],
                             capture_output=True, text=True, timeout=60, check=False)
    uid = subprocess.run([docker, "run", "--rm", "--entrypoint", "id", tag, "-u"],
                         capture_output=True, text=True, timeout=60, check=False)

    assert usage.returncode == 0, usage.stderr
    assert uid.stdout.strip() not in ("", "0")
