"""Settings of the Kubernetes filter are validated with the rest of the file."""

from __future__ import annotations

import pytest

from shipper.app import parse_agent_config
from shipper.errors import ConfigError
from shipper.filters.kubernetes import KubernetesMetadataConfig

BASE = """\
sources: {{c: {{type: tail}}}}
outputs: {{o: {{type: stdout}}}}
filters:
  k8s:
    type: kubernetes_metadata
{settings}
"""


def parse(settings: str) -> KubernetesMetadataConfig:
    config = parse_agent_config(BASE.format(settings=settings))
    f = config.filters["k8s"]
    assert isinstance(f, KubernetesMetadataConfig)
    return f


def test_a_fluentd_style_setup_is_accepted() -> None:
    f = parse("""\
    match: "kube.**"
    kubernetes_url: https://10.96.0.1:443
    bearer_token_file: /var/run/secrets/kubernetes.io/serviceaccount/token
    ca_file: /var/run/secrets/kubernetes.io/serviceaccount/ca.crt
    annotation_match: ["^sidecar\\\\.istio\\\\.io/"]
    de_dot_separator: "-"
    deleted_pod_retention_secs: 2m
    parsed_log: {merge_key: app, max_keys: 50}""")
    assert f.deleted_pod_retention_secs == 120
    assert f.parsed_log.merge_key == "app"
    assert f.annotation_match == ["^sidecar\\.istio\\.io/"]


@pytest.mark.parametrize(("settings", "expected"), [
    ("    annotation_match: ['(']", "filters.k8s.annotation_match: '(' is not a valid"),
    ("    de_dot_separator: '.'", "filters.k8s.de_dot_separator: must not contain '.'"),
    ("    kubernetes_url: kubernetes:443", "filters.k8s.kubernetes_url:"),
    ("    bearer_token_file: /t", "filters.k8s.kubernetes_url: required"),
    ("    retry_initial_secs: 10\n    retry_max_secs: 1", "filters.k8s.retry_max_secs"),
    ("    parsed_log: {merge_key: docker}", "filters.k8s.parsed_log.merge_key"),
    ("    exclude_annotation: ''", "filters.k8s.exclude_annotation"),
    ("    max_requests_per_sec: 0", "filters.k8s.max_requests_per_sec"),
])
def test_settings_that_cannot_work_are_rejected_with_their_key(settings: str,
                                                              expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse(settings)
    assert expected in str(info.value)
