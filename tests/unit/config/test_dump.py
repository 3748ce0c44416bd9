"""A dumped config shows the effective values but never a secret."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from shipper.config.dump import SECRET_MASK, to_plain


class Level(enum.Enum):
    LOW = "low"


@dataclass(frozen=True)
class Credentials:
    """Nested secrets are hidden as well."""

    user: str = "elastic"
    password: str | None = field(default=None, repr=False, metadata={"secret": True})


@dataclass(frozen=True)
class Sink:
    """A component chosen by its type key."""

    hosts: tuple[str, ...] = ("a", "b")
    level: Level = Level.LOW
    auth: Credentials = field(default_factory=Credentials)


@dataclass(frozen=True)
class Root:
    """Holds components by name."""

    outputs: dict[str, Sink] = field(default_factory=dict, metadata={"by_type": "output"})


def test_secrets_are_masked_and_everything_else_is_plain_data() -> None:
    root = Root(outputs={"main": Sink(auth=Credentials(password="hunter2"))})
    assert to_plain(root) == {"outputs": {"main": {
        "hosts": ["a", "b"], "level": "low",
        "auth": {"user": "elastic", "password": SECRET_MASK}}}}


def test_an_unset_secret_is_shown_as_unset() -> None:
    assert to_plain(Credentials()) == {"user": "elastic", "password": None}


def test_secrets_are_shown_only_when_asked_for() -> None:
    assert to_plain(Credentials(password="hunter2"), reveal_secrets=True) == {
        "user": "elastic", "password": "hunter2"}


def test_components_get_their_type_key_back_from_the_registry() -> None:
    plain = to_plain(Root(outputs={"main": Sink()}), registries={"output": {"sink": Sink}})
    assert list(plain["outputs"]["main"]) == ["type", "hosts", "level", "auth"]
    assert plain["outputs"]["main"]["type"] == "sink"
