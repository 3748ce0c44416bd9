"""Embedded Ruby of Fluentd values becomes environment references, or is reported as is."""

from __future__ import annotations

import pytest

from shipper.migrate.model import Env, Ruby, Text
from shipper.migrate.ruby import translate


@pytest.mark.parametrize(("code", "pieces"), [
    ("ENV['HOST']", (Env("HOST"),)),
    ('ENV["HOST"]', (Env("HOST"),)),
    ("ENV.fetch('HOST')", (Env("HOST"),)),
    ("ENV.fetch('PORT', '9200')", (Env("PORT", "text", "9200"),)),
    ("ENV['SCHEME'] || 'http'", (Env("SCHEME", "text", "http"),)),
    ("ENV['USER'] || use_default", (Env("USER", "default"),)),
    ("ENV['TEMPLATE'] || use_nil", (Env("TEMPLATE", "nil"),)),
    ("ENV['VERIFY'] || true", (Env("VERIFY", "text", "true"),)),
    ("ENV['THREADS'] || 8", (Env("THREADS", "text", "8"),)),
    ("  ENV['HOST'].to_s  ", (Env("HOST"),)),
    ("'https://' + ENV['HOST'] + ':443'", (Text("https://"), Env("HOST"), Text(":443"))),
    ("(ENV['A'] || 'x')", (Env("A", "text", "x"),)),
    ("'it\\'s'", (Text("it's"),)),
])
def test_the_environment_subset_translates_exactly(code, pieces):
    assert translate(code) == pieces


@pytest.mark.parametrize("code", [
    "Socket.gethostname",
    "ENV['A'] || ENV['B']",
    "ENV['URL'] || 'https://' + ENV.fetch('KUBERNETES_SERVICE_HOST')",
    "ENV['A'] || 'x' || 'y'",
    "use_default",
    "File.read('/etc/token')",
    "ENV['A'",
])
def test_anything_else_is_kept_as_ruby_to_be_reported(code):
    assert translate(code) == (Ruby(code.strip()),)
