"""Packaging: the Kubernetes manifests' wiring, the Dockerfile and the systemd unit read as
files, and scripts/check-packaging.sh (stages the image tree and a systemd installation into a
temporary directory, runs the staged binary, systemd-analyze verify)."""
import json
import pathlib
import re
import shlex
import shutil
import subprocess
import tempfile
import tomllib
import urllib.error
import urllib.request

import pytest

from conftest import BINARY, ROOT

yaml = pytest.importorskip("yaml", reason="PyYAML is not installed (Tests/sdk/requirements.txt)")

K8S = ROOT / "deploy" / "kubernetes"
IMAGE_MODELS_DIR = "/usr/local/share/llm-sidecar/models"
HEALTHCHECK = "/usr/local/bin/llm-sidecar-healthcheck"


# ---- helpers -----------------------------------------------------------------------------------

def k8s_documents():
    docs = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs[(doc["kind"], doc.get("metadata", {}).get("name", path.name))] = doc
    return docs


def toml_keys(document, prefix=""):
    """Every key path of a TOML document; arrays of tables contribute their tables' keys."""
    keys = set()
    for key, value in document.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            keys |= toml_keys(value, path + ".")
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for item in value:
                keys |= {f"{path}[].{k}" for k in toml_keys(item)}
        else:
            keys.add(path)
    return keys


def dockerfile_instructions(text):
    """(INSTRUCTION, arguments) per instruction: continuation lines joined, comments dropped."""
    instructions, current = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        word, _, rest = current.partition(" ")
        instructions.append((word.upper(), rest.strip()))
        current = ""
    return instructions


def unit_settings(text):
    """{(section, key): [values]} of a systemd unit file."""
    settings, section = {}, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault((section, key.strip()), []).append(value.strip())
    return settings


def seconds(value):
    match = re.fullmatch(r"(\d+)(s|min)?", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "min" else 1)


@pytest.fixture(scope="module")
def docs():
    return k8s_documents()


@pytest.fixture(scope="module")
def pod(docs):
    return docs[("Deployment", "example-app")]["spec"]["template"]["spec"]


@pytest.fixture(scope="module")
def sidecar_container(pod):
    candidates = [c for c in pod.get("initContainers", []) if c.get("restartPolicy") == "Always"]
    candidates += pod.get("containers", [])
    found = [c for c in candidates if c["name"] == "llm-sidecar"]
    assert len(found) == 1, "one llm-sidecar container: a native sidecar or a second container"
    return found[0]


@pytest.fixture(scope="module")
def pod_config(docs):
    return tomllib.loads(docs[("ConfigMap", "llm-sidecar-config")]["data"]["sidecar.conf"])


# ---- Kubernetes ----------------------------------------------------------------------------------

def test_manifests_parse_and_the_kustomization_lists_all_but_the_example_secret(docs):
    assert {kind for kind, _ in docs} >= {"Deployment", "ConfigMap", "Secret", "Kustomization"}
    for (kind, name), doc in docs.items():
        assert doc.get("apiVersion"), (kind, name)
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == ["configmap.yaml", "deployment.yaml"]


def test_pod_config_is_valid_toml_using_only_known_keys(pod_config):
    shipped = tomllib.loads((ROOT / "sidecar.conf").read_text())
    unknown = toml_keys(pod_config) - toml_keys(shipped)
    assert not unknown, f"keys the repository's sidecar.conf does not document: {sorted(unknown)}"


def test_pod_config_listens_on_loopback_and_uses_the_image_files(pod_config):
    assert pod_config["server"]["listen"] == "127.0.0.1:8088"
    assert pod_config["embeddings"]["models_dir"] == IMAGE_MODELS_DIR
    assert pod_config["routing"]["router"] == IMAGE_MODELS_DIR + "/router"


def test_every_key_variable_the_config_names_comes_from_the_secret(docs, pod_config, sidecar_container):
    named = {u["api_key_env"] for u in pod_config["upstreams"] if u.get("api_key_env")}
    named |= {c["token_env"] for c in pod_config.get("clients", []) if c.get("token_env")}
    assert "OPENAI_API_KEY" in named
    env = {e["name"]: e for e in sidecar_container.get("env", [])}
    secret = docs[("Secret", "llm-sidecar-secrets")]
    provided = set(secret.get("stringData", {})) | set(secret.get("data", {}))
    for variable in named:
        assert variable in env, f"{variable} is not set in the llm-sidecar container"
        ref = env[variable]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in provided, variable
    app_env = {e["name"]: e for c in docs[("Deployment", "example-app")]["spec"]["template"]["spec"]["containers"]
               for e in c.get("env", [])}
    assert "valueFrom" not in app_env.get("OPENAI_API_KEY", {}), "the app must not get the real upstream key"
    assert app_env["OPENAI_BASE_URL"]["value"] == f"http://{pod_config['server']['listen']}/v1"


def test_config_map_is_mounted_where_the_sidecar_reads_it(pod, sidecar_container):
    args = sidecar_container.get("args", [])
    config_path = pathlib.PurePosixPath(args[args.index("--config") + 1])
    mount = next(m for m in sidecar_container["volumeMounts"] if m["mountPath"] == str(config_path.parent))
    volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
    assert volume["configMap"]["name"] == "llm-sidecar-config"
    assert any(item["key"] == "sidecar.conf" and item["path"] == config_path.name
               for item in volume["configMap"]["items"])


def probe_target(probe):
    command = probe["exec"]["command"]
    assert command[0] == HEALTHCHECK, "a loopback listener needs an exec probe (httpGet goes to the pod IP)"
    return command[1], command[2]


def test_probes_ask_the_listen_address_for_healthz_and_readyz(sidecar_container, pod_config):
    listen = pod_config["server"]["listen"]
    assert probe_target(sidecar_container["livenessProbe"]) == (listen, "/healthz")
    assert probe_target(sidecar_container["readinessProbe"]) == (listen, "/readyz")
    assert probe_target(sidecar_container["startupProbe"]) == (listen, "/healthz")


def test_the_probed_paths_answer_200_on_the_live_sidecar(sidecar_container, sidecar):
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _, path = probe_target(sidecar_container[probe])
        with urllib.request.urlopen(sidecar + path, timeout=5) as response:
            assert response.status == 200, path
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(sidecar + "/no-such-path", timeout=5)


def test_pod_security_resources_and_grace_period(pod, sidecar_container, pod_config):
    dockerfile = dict(dockerfile_instructions((ROOT / "Dockerfile").read_text()))  # the last of each
    image_uid = int(dockerfile["USER"].split(":")[0])
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == image_uid != 0
    for container in [sidecar_container, *pod["containers"]]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, container["name"]
        assert security["allowPrivilegeEscalation"] is False, container["name"]
        assert security["capabilities"]["drop"] == ["ALL"], container["name"]
        assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    assert pod["terminationGracePeriodSeconds"] * 1000 > pod_config["timeouts"]["request_ms"]


# ---- Dockerfile -----------------------------------------------------------------------------------

def test_dockerfile_builds_with_swift_and_runs_slim_non_root():
    text = (ROOT / "Dockerfile").read_text()
    instructions = dockerfile_instructions(text)
    stages = [args for word, args in instructions if word == "FROM"]
    assert len(stages) == 2 and stages[0].endswith(" AS build") and "--from=build" in text
    args = dict(a.split("=", 1) for word, a in instructions if word == "ARG" and "=" in a)
    assert args["SWIFT_IMAGE"].startswith("swift:6") and args["RUNTIME_IMAGE"] == "debian:bookworm-slim"
    assert set(args["RUNTIME_PACKAGES"].strip('"').split()) >= {"libopenblas0", "libhiredis0.14", "libssl3",
                                                                 "libjemalloc2", "ca-certificates"}
    runs = " ".join(a for word, a in instructions if word == "RUN")
    assert "scripts/stage-runtime.sh --root /stage" in runs and "--listen 0.0.0.0:8088" in runs
    last = {word: a for word, a in instructions}
    assert last["USER"].split(":")[0] not in ("0", "root")
    assert last["EXPOSE"] == "8088" and last["STOPSIGNAL"] == "SIGTERM"
    assert HEALTHCHECK in last["HEALTHCHECK"] and last["HEALTHCHECK"].split()[0].startswith("--")
    assert json.loads(last["ENTRYPOINT"]) == ["/usr/local/bin/llm-sidecar"]
    assert json.loads(last["CMD"]) == ["serve", "--config", "/etc/llm-sidecar/sidecar.conf"]
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ".build" in ignored and "models/*" in ignored and "!models/router" in ignored


def test_dockerfile_parses_with_dockerfile_parse():
    parser_module = pytest.importorskip("dockerfile_parse", reason="dockerfile-parse is not installed (optional)")
    parser = parser_module.DockerfileParser(path=tempfile.mkdtemp())
    parser.content = (ROOT / "Dockerfile").read_text()
    words = [i["instruction"] for i in parser.structure]
    assert words.count("FROM") == 2 and "HEALTHCHECK" in words
    assert parser.baseimage == "debian:bookworm-slim"


# ---- systemd ----------------------------------------------------------------------------------------

def test_unit_runs_the_installed_binary_as_a_notify_service_that_outlasts_the_drain():
    unit = unit_settings((ROOT / "systemd" / "llm-sidecar.service").read_text())
    service = lambda key: unit[("Service", key)][-1]  # noqa: E731
    assert service("Type") == "notify" and service("NotifyAccess") == "main"
    assert shlex.split(service("ExecStart")) == ["/usr/local/bin/llm-sidecar", "serve", "--config",
                                                 "/etc/llm-sidecar/sidecar.conf"]
    assert service("ExecReload") == "/bin/kill -HUP $MAINPID"
    assert seconds(service("WatchdogSec")) == 30
    assert service("DynamicUser") == "yes" and service("CapabilityBoundingSet") == ""
    assert service("EnvironmentFile") == "-/etc/llm-sidecar/env"
    request_ms = tomllib.loads((ROOT / "sidecar.conf").read_text())["timeouts"]["request_ms"]
    assert seconds(service("TimeoutStopSec")) * 1000 > request_ms


def test_check_packaging_script(pod_config):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (apt-get install systemd): "
                    "scripts/check-packaging.sh verifies the unit with it")
    with tempfile.TemporaryDirectory() as tmp:
        conf = pathlib.Path(tmp) / "configmap-sidecar.conf"
        conf.write_text(k8s_documents()[("ConfigMap", "llm-sidecar-config")]["data"]["sidecar.conf"])
        result = subprocess.run(
            ["bash", str(ROOT / "scripts" / "check-packaging.sh"), "--bin", BINARY, "--also-check", str(conf)],
            capture_output=True, text=True, timeout=600, cwd=ROOT,
        )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "== packaging checks passed" in result.stdout
    assert "ok    systemd-analyze verify" in result.stdout
    assert "ok    staged check --config configmap-sidecar.conf" in result.stdout
