"""Our own policies on the rendered manifests, where checkov has no check (reliability §6):
host paths, RBAC, secrets only as files, no host networking, Pod Security, and the
DaemonSet agreeing with the configuration it mounts.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from shipper import __version__
from shipper.app import parse_agent_config
from shipper.cli import build_parser
from shipper.sources.tail.discovery import Discovery
from shipper.sources.tail.paths import parse_path
from shipper.tagmatch import compile_tag_pattern
from tests.k8s.conftest import OVERLAYS, TARGETS
from tests.k8s.manifests import Rendered, containers, files_in_config_volume, ident

STATE_DIR = "/var/lib/shipper"
READ_ONLY_HOST_PATHS = {"/var/log", "/var/lib/docker/containers"}
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|TOKEN|SECRET|API_?KEY|CREDENTIAL|PRIVATE", re.I)
SECRET_KEYS = {"password", "api_key", "token", "shared_key", "secret", "private_key"}

all_targets = pytest.mark.parametrize("target", list(TARGETS))


def secret_settings(tree: Any, path: str = "") -> list[str]:
    """Key paths of secret-named settings that have a value."""
    found = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            here = f"{path}.{key}" if path else str(key)
            if str(key).lower() in SECRET_KEYS and value not in (None, ""):
                found.append(here)
            found += secret_settings(value, here)
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            found += secret_settings(value, f"{path}[{i}]")
    return found


def test_the_secret_setting_finder_finds_nested_and_flow_style_values() -> None:
    tree = yaml.safe_load("outputs: {es: {user: u, password: hunter2}, l: {token_file: /t}}\n"
                          "sources: [{api_key: k}]")
    assert secret_settings(tree) == ["outputs.es.password", "sources[0].api_key"]


def host_path_volumes(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v["hostPath"] for v in pod.get("volumes", []) if "hostPath" in v}


@all_targets
def test_only_the_state_directory_is_a_writable_host_path(
        rendered: dict[str, Rendered], target: str) -> None:
    seen = set()
    for workload, pod in rendered[target].pod_specs():
        host_paths = host_path_volumes(pod)
        if workload["kind"] != "DaemonSet":
            assert host_paths == {}, f"{ident(workload)} must not use host paths"
            continue
        for container in containers(pod):
            for mount in container.get("volumeMounts", []):
                if mount["name"] not in host_paths:
                    continue
                path = host_paths[mount["name"]]["path"].rstrip("/")
                seen.add(path)
                assert path in READ_ONLY_HOST_PATHS | {STATE_DIR}, f"unexpected host path {path}"
                if path == STATE_DIR:
                    assert not mount.get("readOnly", False)
                    assert host_paths[mount["name"]]["type"] == "DirectoryOrCreate"
                else:
                    assert mount.get("readOnly") is True, f"{path} must be mounted read-only"
    assert seen == READ_ONLY_HOST_PATHS | {STATE_DIR}


@all_targets
def test_the_cluster_role_only_reads_pods_and_namespaces(
        rendered: dict[str, Rendered], target: str) -> None:
    result = rendered[target]
    roles = result.of_kind("ClusterRole") + result.of_kind("Role")
    assert [ident(r) for r in roles] == ["ClusterRole/-/shipper"]
    for rule in roles[0]["rules"]:
        assert set(rule["apiGroups"]) == {""}
        assert set(rule["resources"]) <= {"pods", "namespaces"}
        assert set(rule["verbs"]) <= {"get", "list", "watch"}
        assert "resourceNames" not in rule and "nonResourceURLs" not in rule
    bindings = result.of_kind("ClusterRoleBinding") + result.of_kind("RoleBinding")
    assert len(bindings) == 1
    assert bindings[0]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io",
                                      "kind": "ClusterRole", "name": "shipper"}
    assert bindings[0]["subjects"] == [{"kind": "ServiceAccount", "name": "shipper",
                                        "namespace": "shipper"}]
    agent_pod = result.agent["spec"]["template"]["spec"]
    assert agent_pod["serviceAccountName"] == "shipper"


@all_targets
def test_no_secret_value_in_a_config_map_or_an_env_literal(
        rendered: dict[str, Rendered], target: str) -> None:
    result = rendered[target]
    assert result.of_kind("Secret") == [], "Secrets are created by the operator, never committed"
    for workload, pod in result.pod_specs():
        for container in containers(pod):
            for env in container.get("env", []):
                if SECRET_NAME.search(env["name"]):
                    assert "value" not in env, f"{ident(workload)}: literal {env['name']}"
                assert "secretKeyRef" not in env.get("valueFrom", {}), (
                    f"{ident(workload)}: {env['name']} from a Secret; mount it as a file")
            assert "envFrom" not in container, f"{ident(workload)}: envFrom"
    for config_map in result.of_kind("ConfigMap"):
        for key, text in config_map.get("data", {}).items():
            found = secret_settings(yaml.safe_load(text))
            assert found == [], (f"{ident(config_map)} {key}: {found} set in a ConfigMap; "
                                 "use *_file and a mounted Secret")


@pytest.mark.parametrize("target", OVERLAYS)
def test_every_secret_file_the_config_names_is_mounted_from_a_secret(
        rendered: dict[str, Rendered], target: str) -> None:
    result = rendered[target]
    mounted = files_in_config_volume(result.agent)
    assert mounted["/etc/shipper/shipper.yaml"][0] == "configMap"
    for output in result.agent_config["outputs"].values():
        for key, value in output.items():
            if key.endswith("_file") and key != "ca_file" and value:
                assert value in mounted, f"{key}: {value} is not in the agent's config volume"
                assert mounted[value][0] == "secret"
    secret_files = [p for p, (kind, _, _) in mounted.items() if kind == "secret"]
    if target in ("elasticsearch", "logzio"):
        assert secret_files, f"{target}: credentials come from a mounted Secret"
    volume = next(v for v in result.agent["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == "config")
    for source in volume["projected"]["sources"]:
        if "secret" in source:
            assert source["secret"].get("optional") is False
            assert all(item["mode"] == 0o400 for item in source["secret"]["items"])


def test_the_logzio_token_is_the_file_the_colleague_output_reads(
        rendered: dict[str, Rendered]) -> None:
    result = rendered["logzio"]
    output = result.agent_config["outputs"]["logzio"]
    assert output["token_file"] == "/etc/shipper/logzio/token"
    assert output["listener"].startswith("https://")
    assert files_in_config_volume(result.agent)["/etc/shipper/logzio/token"] == (
        "secret", "shipper-logzio", "token")


@all_targets
def test_no_host_port_host_network_or_privileged_container(
        rendered: dict[str, Rendered], target: str) -> None:
    for workload, pod in rendered[target].pod_specs():
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not pod.get(field, False), f"{ident(workload)}: {field}"
        for container in containers(pod):
            for port in container.get("ports", []):
                assert "hostPort" not in port, f"{ident(workload)}: hostPort {port}"
                assert "hostIP" not in port
            context = container.get("securityContext", {})
            assert context.get("privileged", False) is False
            assert context.get("allowPrivilegeEscalation") is False, ident(workload)
            assert context.get("readOnlyRootFilesystem") is True, ident(workload)
            assert context.get("capabilities") == {"drop": ["ALL"]}, ident(workload)


@all_targets
def test_pods_meet_pod_security_restricted_except_the_agents_documented_needs(
        rendered: dict[str, Rendered], target: str) -> None:
    """Restricted, checked here the way the namespace's warn/audit labels will at admission.
    The agent may deviate only by its host paths and UID 0 (k8s/base/daemonset.yaml)."""
    for workload, pod in rendered[target].pod_specs():
        is_agent = workload["kind"] == "DaemonSet" and workload["metadata"]["name"] == "shipper"
        pod_context = pod.get("securityContext", {})
        assert pod_context.get("seccompProfile") == {"type": "RuntimeDefault"}, ident(workload)
        for container in containers(pod):
            context = container.get("securityContext", {})
            if is_agent:
                assert context["runAsUser"] == 0 and context["runAsNonRoot"] is False
            else:
                assert (context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))) is True
                assert context.get("runAsUser", pod_context.get("runAsUser", 1)) != 0
            assert set(context["capabilities"].get("add", [])) <= {"NET_BIND_SERVICE"}
        allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                           "persistentVolumeClaim", "projected", "secret"}
        for volume in pod.get("volumes", []):
            kinds = set(volume) - {"name"}
            if not (is_agent and kinds == {"hostPath"}):
                assert kinds <= allowed_volumes, f"{ident(workload)}: volume {volume}"


@all_targets
def test_namespaces_carry_pod_security_labels(rendered: dict[str, Rendered],
                                              target: str) -> None:
    for namespace in rendered[target].of_kind("Namespace"):
        labels = namespace["metadata"]["labels"]
        expected = "privileged" if namespace["metadata"]["name"] == "shipper" else "restricted"
        assert labels["pod-security.kubernetes.io/enforce"] == expected
        assert labels["pod-security.kubernetes.io/warn"] == "restricted"
        assert labels["pod-security.kubernetes.io/audit"] == "restricted"


@all_targets
def test_the_agent_pod_matches_its_configuration(rendered: dict[str, Rendered],
                                                 target: str) -> None:
    result = rendered[target]
    config = parse_agent_config(result.agent_config_text, file=f"{target}/shipper.yaml",
                                environ={"NODE_NAME": "node-1"})
    pod = result.agent["spec"]["template"]["spec"]
    [container] = pod["containers"]

    assert container["args"] == ["run", "-c", "/etc/shipper/shipper.yaml"]
    assert files_in_config_volume(result.agent)["/etc/shipper/shipper.yaml"][2] == "shipper.yaml"
    host, _, port = config.telemetry.listen.rpartition(":")
    assert host in ("0.0.0.0", "[::]"), "probes and Prometheus connect to the pod IP"
    ports = {p["name"]: p for p in container["ports"]}
    assert ports["telemetry"]["containerPort"] == int(port)
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "telemetry"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "telemetry"}
    annotations = result.agent["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == port

    grace = pod["terminationGracePeriodSeconds"]
    assert grace >= config.shutdown_deadline_secs + 10, "room to drain, then exit"
    assert config.state_dir == STATE_DIR
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}

    assert pod["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in pod["tolerations"]
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    assert container["image"].split("/")[-1] == f"shipper:{__version__}"


@all_targets
def test_the_agent_never_tails_its_own_logs(rendered: dict[str, Rendered], target: str) -> None:
    result = rendered[target]
    namespace = result.agent["metadata"]["namespace"]
    container = result.agent["spec"]["template"]["spec"]["containers"][0]["name"]
    own = (f"/var/log/containers/{result.agent['metadata']['name']}-x7k2p_{namespace}_"
           f"{container}-{'0' * 64}.log")
    tails = [s for s in result.agent_config["sources"].values() if s["type"] == "tail"]
    assert tails
    for source in tails:
        discovery = Discovery(source.get("include", []), source.get("exclude", []))
        assert discovery.excluded(own)
        for other in ("/var/log/containers/shipper-dashboards-abcde_logging_import-1.log",
                      "/var/log/containers/shipper-7f9c_default_app-2.log",
                      "/var/log/containers/productpage-v1-5b6d_bookinfo_istio-proxy-3.log"):
            assert not discovery.excluded(other), other


@all_targets
def test_forward_is_exposed_node_locally_behind_a_network_policy(
        rendered: dict[str, Rendered], target: str) -> None:
    result = rendered[target]
    service = result.one("Service", "shipper-forward")
    assert service["spec"]["internalTrafficPolicy"] == "Local"
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert {(p["port"], p["protocol"]) for p in service["spec"]["ports"]} == {
        (24224, "TCP"), (24224, "UDP")}
    pod_labels = result.agent["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    policies = [p for p in result.of_kind("NetworkPolicy")
                if p["metadata"]["namespace"] == "shipper"
                and p["spec"]["podSelector"]["matchLabels"].items() <= pod_labels.items()]
    assert len(policies) == 1
    rules = policies[0]["spec"]["ingress"]
    forward = [r for r in rules if {p["port"] for p in r["ports"]} == {24224}]
    assert len(forward) == 1 and forward[0]["from"] != [{"namespaceSelector": {}}], (
        "forward is open only to labelled namespaces")


@all_targets
def test_every_pod_is_covered_by_a_network_policy(rendered: dict[str, Rendered],
                                                  target: str) -> None:
    result = rendered[target]
    policies = result.of_kind("NetworkPolicy")
    for workload, _ in result.pod_specs():
        labels = workload["spec"]["template"]["metadata"].get("labels", {})
        namespace = workload["metadata"]["namespace"]
        assert any(p["metadata"]["namespace"] == namespace
                   and p["spec"]["podSelector"].get("matchLabels", {}).items() <= labels.items()
                   for p in policies), ident(workload)


def test_the_quickstart_uses_one_image_version_for_elasticsearch_and_kibana(
        rendered: dict[str, Rendered]) -> None:
    result = rendered["efk-quickstart"]
    es = result.one("StatefulSet", "elasticsearch")["spec"]["template"]["spec"]["containers"][0]
    kibana = result.one("Deployment", "kibana")["spec"]["template"]["spec"]["containers"][0]
    es_version = es["image"].rsplit(":", 1)[1]
    assert es_version.startswith("8.")
    assert kibana["image"].rsplit(":", 1)[1] == es_version
    job = result.one("Job", "shipper-dashboards")["spec"]["template"]["spec"]
    args = job["containers"][0]["args"]
    assert args[:4] == ["dashboards", "import", "--kibana", "http://kibana:5601"]
    parsed = build_parser().parse_args(args)
    assert parsed.kibana == "http://kibana:5601"
    assert parsed.wait_secs >= 600, "Kibana takes minutes to start on a fresh cluster"
    assert job["containers"][0]["image"] == result.agent["spec"]["template"]["spec"][
        "containers"][0]["image"]
    hosts = result.agent_config["outputs"]["elasticsearch"]["hosts"]
    assert hosts == ["http://elasticsearch.logging.svc:9200"]
    assert result.one("Service", "elasticsearch")["metadata"]["namespace"] == "logging"


def test_every_config_reads_the_same_sources_and_filters(rendered: dict[str, Rendered]) -> None:
    """The overlays differ only in their outputs: an edit to the sources reaches them all."""
    configs = {name: result.agent_config for name, result in rendered.items()}
    for name, config in configs.items():
        for section in ("sources", "filters", "state_dir", "telemetry",
                        "shutdown_deadline_secs"):
            assert config[section] == configs["base"][section], f"{name}: {section}"


@all_targets
def test_kubernetes_metadata_enriches_the_tailed_container_logs(
        rendered: dict[str, Rendered], target: str) -> None:
    config = parse_agent_config(rendered[target].agent_config_text,
                                environ={"NODE_NAME": "node-1"})
    [tail] = [s for s in config.sources.values() if s.type == "tail"]
    tag = parse_path("/var/log/containers/web-1_shop_app-" + "a" * 64 + ".log",
                     tail.tag_prefix).tag
    enrichers = [f for f in config.filters.values() if f.type == "kubernetes_metadata"]
    assert len(enrichers) == 1
    assert compile_tag_pattern(enrichers[0].match).match(tag), tag
    assert enrichers[0].node_name is None, "taken from NODE_NAME, set by the downward API"
    assert enrichers[0].kubernetes_url is None, "in-cluster service account"


FORWARD_BLOCK = re.compile(r"^  # forward:\n(?:  #   .*\n)+", re.M)


@all_targets
def test_the_commented_forward_source_is_valid_and_matches_the_service(
        rendered: dict[str, Rendered], target: str) -> None:
    """Forward is off by default (reliability §6.1); uncommenting the block must work."""
    result = rendered[target]
    text = result.agent_config_text
    assert "forward" not in result.agent_config["sources"]
    [block] = FORWARD_BLOCK.findall(text)
    enabled = text.replace(block, re.sub(r"^  # ", "  ", block, flags=re.M))
    config = parse_agent_config(enabled, environ={"NODE_NAME": "node-1"})
    [forward] = [s for s in config.sources.values() if s.type == "forward"]
    host, _, port = forward.listen.rpartition(":")
    assert host == "0.0.0.0" and int(port) == 24224
    container = result.agent["spec"]["template"]["spec"]["containers"][0]
    assert {(p["containerPort"], p["protocol"]) for p in container["ports"]
            if p["name"].startswith("forward")} == {(24224, "TCP"), (24224, "UDP")}
