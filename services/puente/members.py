"""The member list: which states take part in Puente. It is data (policies/members.yaml)."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, Field, ValidationError

from puente.errors import ConfigError

MEMBERS_FILE = "members.yaml"


class Member(BaseModel, frozen=True):
    """One member state."""

    code: str = Field(pattern=r"^[A-Z]{2}$", description="ISO 3166-1 alpha-2 code")
    name: str
    languages: tuple[str, ...] = ()


class MemberList(BaseModel, frozen=True):
    members: tuple[Member, ...]

    @property
    def codes(self) -> tuple[str, ...]:
        return tuple(m.code for m in self.members)

    def get(self, code: str) -> Member:
        for m in self.members:
            if m.code == code:
                return m
        raise KeyError(code)


def load_members(policies_dir: Path) -> MemberList:
    """Read and validate ``members.yaml``; a duplicate or malformed code is a ConfigError."""
    path = policies_dir / MEMBERS_FILE
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        members = MemberList.model_validate(raw)
    except FileNotFoundError as exc:
        raise ConfigError(f"member list not found: {path}", hint="set PUENTE_POLICIES_DIR") from exc
    except (yaml.YAMLError, ValidationError) as exc:
        raise ConfigError(f"{path}: invalid member list: {exc}") from exc
    seen: set[str] = set()
    for m in members.members:
        if m.code in seen:
            raise ConfigError(f"{path}: member {m.code} is listed twice")
        seen.add(m.code)
    return members
