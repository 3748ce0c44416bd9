"""telemetry.tap and stuck_after_secs in the config file: off by default, checked strictly."""

import pytest

from shipper.app import parse_agent_config
from shipper.errors import ConfigError

BASE = """\
sources: {c: {type: tail, include: ["/var/log/containers/*.log"]}}
outputs: {es: {type: elasticsearch, hosts: ["http://es:9200"]}}
"""


def test_the_tap_is_off_unless_enabled_and_the_watchdog_on():
    config = parse_agent_config(BASE)
    assert not config.telemetry.tap.enabled and config.telemetry.tap.listen == ""
    assert config.stuck_after_secs == 900


def test_the_tap_listens_on_the_pod_ip_from_the_environment():
    config = parse_agent_config(
        BASE + 'telemetry: {tap: {enabled: true, listen: "${POD_IP}:24232"}}\n'
        "stuck_after_secs: 20m\n", environ={"POD_IP": "10.244.1.5"})
    assert config.telemetry.tap.listen == "10.244.1.5:24232"
    assert config.stuck_after_secs == 1200


@pytest.mark.parametrize("tap, problem", [
    ("{listen: nowhere}", "telemetry.tap.listen"),
    ("{max_subscribers: 0}", "telemetry.tap.max_subscribers"),
    ("{enable: true}", "telemetry.tap.enable"),
])
def test_mistakes_are_reported_with_their_key(tap, problem):
    with pytest.raises(ConfigError) as exc:
        parse_agent_config(BASE + f"telemetry: {{tap: {tap}}}\n")
    assert any(problem in str(p) for p in exc.value.problems)
