"""The three real-world Fluentd setups convert, pass the agent's loader and report exactly
the parts shipper does without."""

from __future__ import annotations

from pathlib import Path

from shipper.migrate import migrate
from tests.unit.migrate.helpers import data, messages, validate

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "fluentd"
EFK = FIXTURES / "efk" / "fluentd-es-configmap.yaml"
DAEMONSET = FIXTURES / "daemonset" / "fluent.conf"
LOGZIO = FIXTURES / "logzio" / "fluent.conf"


def test_the_efk_configmap_with_v012_spellings():
    migration = migrate(str(EFK))
    config = validate(migration)
    assert list(config.sources) == ["containers", "forward", "kubelet", "docker"]
    containers = config.sources["containers"]
    assert (containers.include, containers.tag_prefix, containers.read_from_head) == (
        ["/var/log/containers/*.log"], "kubernetes", True)  # "raw." removed as Fluentd did
    assert config.sources["forward"].listen == "0.0.0.0:24224"
    assert config.sources["kubelet"].multiline[0].start_pattern == r"^\w\d{4}"
    assert config.filters["kubernetes_metadata"].match == "kubernetes.**"
    es = config.outputs["elasticsearch"]
    assert (es.hosts, es.logstash_format, es.match) == (
        ["http://elasticsearch-logging:9200"], True, "**")
    buffer = es.buffer
    assert (buffer.chunk_limit_bytes, buffer.total_limit_bytes, buffer.flush_interval_secs,
            buffer.retry_max_secs, buffer.max_in_flight) == (2 * 2**20, 16 * 2**20, 5.0, 30.0, 2)
    assert config.telemetry.listen == "0.0.0.0:24231"
    assert [m.split(": ", 1)[0] for m in messages(migration)] == [
        "fluentd-es-configmap.yaml:32",  # detect_exceptions
        "fluentd-es-configmap.yaml:44",  # kubelet.log is not a container log
        "fluentd-es-configmap.yaml:49",  # format1 fields
        "fluentd-es-configmap.yaml:53",  # tag kubelet (fixed tag)
        "fluentd-es-configmap.yaml:58",  # docker.log is not a container log
        "fluentd-es-configmap.yaml:60",  # regexp parser
        "fluentd-es-configmap.yaml:63",  # tag docker
        "fluentd-es-configmap.yaml:77",  # monitor_agent
    ]
    assert migration.exit_code == 1


def test_the_daemonset_files_with_includes_and_environment():
    migration = migrate(str(DAEMONSET))
    environ = {"FLUENT_ELASTICSEARCH_HOST": "elasticsearch.logging",
               "FLUENT_ELASTICSEARCH_PORT": "9200",
               "FLUENT_ELASTICSEARCH_PASSWORD": "from-a-secret",
               "FLUENT_ELASTICSEARCH_USER": "elastic"}
    config = validate(migration, environ)
    assert list(config.sources) == ["in_tail_container_logs", "in_tail_kubelet"]
    assert list(config.filters) == ["filter_kube_metadata", "filter_json_log"]
    assert config.sources["in_tail_container_logs"].exclude == [
        "*_kube-node-lease_*", "*_local-path-storage_*", "*_shop_*"]
    es = config.outputs["out_es"]
    assert (es.hosts, es.user, es.password) == (
        ["http://elasticsearch.logging:9200"], "elastic", "from-a-secret")
    assert (es.logstash_prefix, es.request_timeout_secs, es.buffer.max_in_flight,
            es.buffer.total_limit_bytes) == ("logstash", 5.0, 8, 64 * 2**20)
    assert config.filters["filter_kube_metadata"].kubernetes_url is None  # in-cluster
    assert config.telemetry.listen == "0.0.0.0:24231"
    assert {m.split(": ", 1)[0] for m in messages(migration)} == {
        "systemd.conf:2", "kubernetes.conf:25", "kubernetes.conf:31", "kubernetes.conf:33",
        # settings the DaemonSet's environment may change, which shipper cannot follow:
        "fluent.conf:30",  # TARGET_INDEX_KEY: an index per record
        "fluent.conf:34",  # TEMPLATE_FILE: the operator's own template
        "fluent.conf:47",  # BUFFER_CHUNK_LIMIT_SIZE: Fluentd's 2M is 2 MiB
        "kubernetes.conf:16",  # TAIL_EXCLUDE_PATH: a list shipper needs in the file
        "kubernetes.conf:40"}  # FILTER_KUBERNETES_URL: still overrides, without /api
    assert "FLUENT_ELASTICSEARCH_HOST (first used at" in migration.text
    # Unset variables fall back like Fluentd's `|| 'default'`:
    unset = validate(migration, {"FLUENT_ELASTICSEARCH_HOST": "es",
                                 "FLUENT_ELASTICSEARCH_PORT": "9200"})
    assert unset.outputs["out_es"].user is None and unset.outputs["out_es"].password is None


def test_the_logzio_config_moves_its_token_out_of_the_file():
    text = LOGZIO.read_text()
    token = text.split("token=", 1)[1].split("&", 1)[0]
    migration = migrate(str(LOGZIO))
    assert token not in migration.text
    assert messages(migration) == []
    assert [(s.env, s.where.rsplit("/", 1)[1]) for s in migration.findings.secrets] == [
        ("LOGZIO_TOKEN", "fluent.conf:51")]
    assert migration.exit_code == 1
    config = validate(migration, {"LOGZIO_TOKEN": token})
    logzio = config.outputs["out_logzio"]
    assert (logzio.region, logzio.token, logzio.log_type, logzio.gzip, logzio.tag_key) == (
        "eu", token, "k8s", True, "fluentd_tags")
    assert (logzio.buffer.type, logzio.buffer.max_in_flight, logzio.buffer.total_limit_bytes) \
        == ("disk", 4, 12 * 2**20)
    assert config.filters["filter_kube_metadata"].annotation_match == [
        r"^logz\.io/", "sidecar.istio.io/status"]
    assert data(migration)["log_level"] == "info"


LOGZIO_K8S = FIXTURES / "logzio-k8s" / "configmap.yaml"
BITNAMI = FIXTURES / "bitnami" / "aggregator.yaml"
FLUENT_CHART = FIXTURES / "fluent-chart" / "rendered.yaml"
ISTIO = FIXTURES / "istio" / "logging-stack.yaml"


def test_logzio_k8s_configmap_reads_each_entry_once_and_warns_of_the_unfilled_conf_d():
    migration = migrate(str(LOGZIO_K8S))
    config = validate(migration, {"LOGZIO_TOKEN": "t"})
    assert list(config.sources) == ["in_tail_container_logs"]
    assert list(config.filters) == ["filter_kube_metadata"]
    assert list(config.outputs) == ["out_logzio"]
    assert config.telemetry.listen == "0.0.0.0:24231"  # prometheus.conf, via its ENV include
    assert messages(migration) == [
        "configmap.yaml:13: @include conf.d/*.conf matches no file (/fluentd/etc/conf.d is "
        "empty or not in what was given): whatever the running Fluentd finds there is not "
        "converted"]
    assert migration.exit_code == 1


def test_bitnami_root_fluentd_conf_gives_one_forward_source():
    migration = migrate(str(BITNAMI))
    config = validate(migration)
    assert list(config.sources) == ["forward"]
    assert config.sources["forward"].listen == "0.0.0.0:24224"
    assert list(config.outputs) == ["out_es"]
    assert migration.exit_code == 0


def test_fluent_chart_reads_both_configmaps_at_the_daemonsets_mount_paths():
    migration = migrate(str(FLUENT_CHART))
    config = validate(migration)
    assert list(config.sources) == ["in_tail_container_logs"]
    assert list(config.filters) == ["kubernetes_metadata"]
    assert list(config.outputs) == ["elasticsearch"]
    assert messages(migration) == []


def test_fluent_chart_without_its_daemonset_mounts_config_d_by_the_chart_convention(tmp_path):
    text = FLUENT_CHART.read_text().split("---\napiVersion: apps/v1")[0]
    path = tmp_path / "configmaps.yaml"
    path.write_text(text)
    migration = migrate(str(path))
    assert list(validate(migration).sources) == ["in_tail_container_logs"]
    assert any("ConfigMap fluentd-config is read as the files of /fluentd/etc/config.d" in n
               for n in messages(migration, "note"))


def test_istio_forward_source_with_include_tag_key_keeps_the_tag():
    migration = migrate(str(ISTIO))
    config = validate(migration)
    assert list(config.sources) == ["forward"] and list(config.outputs) == ["elasticsearch"]
    assert config.sources["forward"].tag_key == "tag"
    assert messages(migration) == []
    assert migration.exit_code == 0
