"""Tag and Kubernetes names from file paths: Fluentd's regexes and examples (spec §2.6)."""

from shipper.sources.tail.paths import build_tag, parse_path

ID = "0123456789abcdef" * 4


def test_tag_replaces_slashes_and_squeezes_dots_like_fluentd() -> None:
    assert build_tag("kube", "/var/log/containers/a.log") == "kube.var.log.containers.a.log"
    assert build_tag("kube.", "//var/log//x.log") == "kube.var.log.x.log"
    assert build_tag("", "/var/log/x.log") == "var.log.x.log"


def test_containers_symlink_name_gives_pod_namespace_container_and_id() -> None:
    meta = parse_path(f"/var/log/containers/web-7d4b9c-x2x_default_nginx-{ID}.log", "kube")
    assert meta.tag == f"kube.var.log.containers.web-7d4b9c-x2x_default_nginx-{ID}.log"
    assert meta.kubernetes == {"namespace_name": "default", "pod_name": "web-7d4b9c-x2x",
                               "container_name": "nginx"}
    assert meta.docker == {"container_id": ID}
    assert meta.container_id == ID


def test_dotted_pod_names_and_dashed_container_names_parse() -> None:
    meta = parse_path(f"/var/log/containers/my.dotted.pod_kube-system_side-car-{ID}.log", "k")
    assert meta.kubernetes == {"namespace_name": "kube-system", "pod_name": "my.dotted.pod",
                               "container_name": "side-car"}


def test_pods_directory_layout_gives_pod_id_and_no_container_id() -> None:
    uid = "5f2b7c1e-8a8e-4a57-9d52-0c3f1e2d9b11"
    meta = parse_path(f"/var/log/pods/default_web-7d4b9c-x2x_{uid}/nginx/0.log", "kube")
    assert meta.kubernetes == {"namespace_name": "default", "pod_name": "web-7d4b9c-x2x",
                               "container_name": "nginx", "pod_id": uid}
    assert meta.docker is None
    assert meta.container_id is None


def test_prefixes_before_var_log_are_allowed_as_in_fluentd() -> None:
    meta = parse_path(f"/host/var/log/containers/p_ns_c-{ID}.log", "kube")
    assert meta.kubernetes is not None and meta.kubernetes["pod_name"] == "p"


def test_other_files_still_ship_without_kubernetes_fields() -> None:
    for path in ("/var/log/syslog.log", f"/var/log/containers/cut-by-kubelet_ns_c-{ID[:20]}.log",
                 "/var/log/containers/UPPER_ns_c-" + ID + ".log"):
        meta = parse_path(path, "kube")
        assert meta.kubernetes is None and meta.docker is None
        assert meta.static_fields() == {"tag": meta.tag}


def test_static_fields_share_the_per_file_dicts() -> None:
    meta = parse_path(f"/var/log/containers/p_ns_c-{ID}.log", "kube")
    fields = meta.static_fields()
    assert fields["kubernetes"] is meta.kubernetes and fields["docker"] is meta.docker
