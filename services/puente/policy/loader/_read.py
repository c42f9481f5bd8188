"""Phase 1, read: the files of a policy directory as YAML that keeps its lines, each validated
against its pydantic model, and which state file is whose.

Problems of this phase are about files: unreadable, not YAML, not the expected shape, two files
for one state, a file for a state that is not a member, a member without a file. Nothing here
knows about rules, schemas or CEL.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from puente.codec.registry import Registry
from puente.errors import PuenteError
from puente.members import MEMBERS_FILE, load_members
from puente.policy.engine import NOTICE_TYPES, Digests
from puente.policy.loader._problems import Problems, what
from puente.policy.model import RegionalFile, StateFile
from puente.policy.yamlsrc import LMap, YamlSourceError, key_line, line_of, load_yaml

REGIONAL_FILE = "regional.yaml"
STATES_DIR = "states"
STATE_SUFFIXES = (".yaml", ".yml")
_TOO_DEEP = "RecursionError: maximum recursion depth exceeded"

M = TypeVar("M", bound=BaseModel)


def notice_schemas(schemas_dir: Path) -> dict[str, dict[str, Any]]:
    """The latest Avro schema (raw JSON) of each notice type the engine decides on, from the
    codec's registry: the one place the policy engine reads schemas."""
    registry = Registry.load(schemas_dir)
    return {t: dict(registry.latest(f"puente.{t}").schema) for t in NOTICE_TYPES}


def policy_version(files: Iterable[tuple[str, bytes]]) -> str:
    """The policy-set version: SHA-256 over every file's relative path and bytes, in path order."""
    h = hashlib.sha256(b"puente.policy-set.v1\n")
    for name, raw in sorted(files):
        h.update(name.encode() + b"\x00" + str(len(raw)).encode() + b"\x00" + raw)
    return "sha256:" + h.hexdigest()


def state_files(policies_dir: Path) -> list[Path]:
    """The state files of a policy directory (``states/*.yaml`` and ``states/*.yml``), sorted."""
    folder = policies_dir / STATES_DIR
    return sorted(p for p in folder.glob("*.y*ml") if p.suffix in STATE_SUFFIXES)


def current_version(policies_dir: Path) -> str | None:
    """The version the directory would load as, from its bytes alone (no parsing): what a
    running service compares before paying for a full load. None if a file is unreadable."""
    paths = [policies_dir / MEMBERS_FILE, policies_dir / REGIONAL_FILE]
    paths += state_files(policies_dir)
    try:
        return policy_version(
            (p.relative_to(policies_dir).as_posix(), p.read_bytes()) for p in paths
        )
    except OSError:
        return None


def file_digests(sources: Sources) -> Digests:
    """SHA-256 of the regional file (the floor the federation pins in its trust list) and of
    each member's own file (its national rules), from the bytes read."""
    raw = dict(sources.raw)
    states = {code: hashlib.sha256(raw[src.name]).digest() for code, src in sources.states.items()}
    return Digests(hashlib.sha256(raw[REGIONAL_FILE]).digest(), states)


@dataclass(frozen=True, slots=True)
class Source(Generic[M]):
    """One policy file: its name as problems show it, its data with lines, and its model."""

    name: str  # path relative to the policy root
    data: LMap
    model: M


@dataclass(frozen=True, slots=True)
class Sources:
    """What the read phase hands on: the member list, the regional file and each member's file."""

    members: tuple[str, ...]
    regional: Source[RegionalFile]
    states: dict[str, Source[StateFile]]  # member code → its file, in file-name order
    raw: tuple[tuple[str, bytes], ...]  # (name, bytes) of every file read: the set's version


def read(root: Path, problems: Problems) -> Sources | None:
    """Read the policy directory ``root``; None (with the problems said) if the member list or
    the regional file cannot be had. A state file that cannot be read is a problem and is left
    out; the read goes on, so that every file's problems are listed."""
    raw: list[tuple[str, bytes]] = []
    try:
        members = load_members(root).codes
    except PuenteError as exc:
        problems.error(MEMBERS_FILE, 1, exc.reason, exc.message)
        return None
    raw.append((MEMBERS_FILE, (root / MEMBERS_FILE).read_bytes()))
    member_set = frozenset(members)

    regional_path = root / REGIONAL_FILE
    if not regional_path.is_file():
        problems.error(REGIONAL_FILE, 1, "POLICY_MISSING_FILE", "the regional file is missing")
        return None
    regional = _read_file(root, regional_path, RegionalFile, problems, raw)

    states: dict[str, Source[StateFile]] = {}
    paths = state_files(root)
    stems: dict[str, list[Path]] = {}
    for path in paths:
        stems.setdefault(path.stem, []).append(path)
    refused: set[str] = set()
    for stem, same in stems.items():
        if len(same) > 1:
            # CR.yml beside CR.yaml: which one is the state's law? Never guessed.
            names = " and ".join(f"{STATES_DIR}/{p.name}" for p in same)
            for path in same:
                problems.error(
                    f"{STATES_DIR}/{path.name}",
                    1,
                    "POLICY_AMBIGUOUS_FILE",
                    f"{names} are both the policy file of {stem}; keep exactly one",
                )
            refused.add(stem)
    for path in paths:
        if path.stem in refused:
            continue
        src = _read_file(root, path, StateFile, problems, raw)
        if src is None:
            continue
        sf = src.model
        if sf.state != path.stem:
            problems.error(
                src.name,
                key_line(src.data, "state"),
                "POLICY_STATE_MISMATCH",
                f"file {path.name} declares state {sf.state}; name it {sf.state}.yaml",
            )
        elif sf.state not in member_set:
            problems.error(
                src.name,
                key_line(src.data, "state"),
                "POLICY_UNKNOWN_STATE",
                f"{sf.state} is not in {MEMBERS_FILE}",
            )
        else:
            states[sf.state] = src
    for code in members:
        if code not in states and not problems.about(
            {f"{STATES_DIR}/{code}{s}" for s in STATE_SUFFIXES}
        ):
            problems.warn(
                f"{STATES_DIR}/{code}.yaml",
                1,
                "POLICY_STATE_WITHOUT_FILE",
                f"member {code} has no policy file: it shares nothing and accepts nothing",
            )
    if regional is None:
        return None
    return Sources(members, regional, states, tuple(raw))


def _read_file(
    root: Path,
    path: Path,
    model: type[M],
    problems: Problems,
    raw: list[tuple[str, bytes]],
) -> Source[M] | None:
    """One file as a :class:`Source`, its bytes added to ``raw``; None (with the problems said)
    if it is not readable YAML holding a mapping of the model's shape."""
    name = path.relative_to(root).as_posix()
    try:
        data, content = load_yaml(path, name)
    except YamlSourceError as exc:
        problems.add(exc.problem)
        return None
    except OSError as exc:
        problems.error(name, 1, "POLICY_FILE_UNREADABLE", str(exc))
        return None
    except UnicodeDecodeError as exc:
        problems.error(name, 1, "POLICY_FILE_UNREADABLE", f"not UTF-8 text: {exc.reason}")
        return None
    except RecursionError:
        # Absurdly nested YAML. Python words this error by where the stack ran out ("... while
        # calling a Python object" or not), which depends on the caller's depth: one text here.
        problems.error(name, 1, "POLICY_YAML_SYNTAX", f"unreadable YAML ({_TOO_DEEP})")
        return None
    except Exception as exc:  # whatever else PyYAML meets on odd input
        problems.error(name, 1, "POLICY_YAML_SYNTAX", f"unreadable YAML ({what(exc)})")
        return None
    raw.append((name, content))
    if not isinstance(data, LMap):
        problems.error(name, 1, "POLICY_SHAPE", "the file must hold a mapping")
        return None
    try:
        return Source(name, data, model.model_validate(data))
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            where = ".".join(str(p) for p in loc) or "(file)"
            problems.error(name, line_of(data, loc), "POLICY_SHAPE", f"{where}: {err['msg']}")
        return None
    except Exception as exc:  # a validator's own failure on odd input
        problems.error(name, 1, "POLICY_SHAPE", f"the file could not be validated ({what(exc)})")
        return None
