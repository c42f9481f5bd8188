"""Secret material for a deployment, generated locally and never committed.

The operator's secrets folder (``deploy/compose/secrets/`` for Compose, git-ignored; any folder
for Kubernetes) holds, all private files 0600::

    admin.json, <principal>.json    every principal's SCRAM credential (SecretStore format),
                                    one per member state and per node among them
    kafka-broker.properties         the brokers' PLAIN password (Compose: FileConfigProvider)
    gateway-tls.crt, .key           a self-signed certificate for the gateways (Compose)
    nodes/CC/keys/                  state CC's node key store (puente.evidence.keystore): its
                                    node:CC Ed25519 signing key (delivery, checkpoint,
                                    early-warning) and X25519 encryption key (agencies seal
                                    ingress to it; the node seals its own state to it)
    nodes/CC/policy-pseudonym.key   CC's node's pseudonymisation secret (its own)
    gateways/CC/keys/               state CC's gateway key store: its member:CC X25519
                                    encryption key (nodes seal deliveries to CC to it)
    warnings/keys/                  the early-warning evaluator's key store: its
                                    service:warnings Ed25519 key (usage early-warning)
    trust/                          the operator's key store (``puente keys --dir``): the
                                    operator:root key, the public part of every node key, of
                                    the evaluator's key and of every state's member encryption
                                    key (and of every other
                                    member key the operator imports), the signed trust list
                                    pinning the regional floor
    trust-public/                   what every node and gateway mounts: the root's verifier
                                    keys and the signed trust list; nothing private

Existing files are kept: rotation is a deliberate act (a new key file, then a new trust list;
deploy/README.md). Each run copies the public part of every node and gateway key the trust store
lacks and signs a new trust list when its keys or floor changed or it nears expiry.

``k8s_secret_manifests`` turns the folder into Kubernetes Secret manifests (and
``k8s_trust_configmap`` the public trust material into a ConfigMap), written to a 0600 file for
``kubectl apply`` (never printed).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from puente.deploy import contract as c
from puente.errors import ConfigError
from puente.evidence._time import now_ms
from puente.evidence.errors import UntrustedKeyError
from puente.evidence.keystore import TRUST_LIST_FILE, KeyStore
from puente.evidence.trust import (
    ROOT_HOLDER,
    TrustList,
    Usage,
    member_holder,
    node_holder,
    service_holder,
)
from puente.evidence.witness import witness_key_name
from puente.kafka.broker_config import ADMIN_USER, BROKER_USER
from puente.secrets import SecretStore, new_password, write_private
from puente.service.secret import new_pseudonym_secret

NODES_DIR = "nodes"
GATEWAYS_DIR = "gateways"
WARNINGS_DIR = "warnings"
TRUST_DIR = "trust"
TRUST_PUBLIC_DIR = "trust-public"
NODE_KEYS_SUBDIR = "keys"
GATEWAY_KEYS_SUBDIR = "keys"
TRUST_LIST_MS = 30 * 86_400_000  # a signed list is valid 30 days...
RESIGN_WITHIN_MS = 7 * 86_400_000  # ...and is signed anew by the first run in its last 7


def _random_cluster_id() -> str:
    import base64
    import uuid

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def node_dir(secrets_dir: Path, member: str) -> Path:
    """State ``member``'s node's folder: its key store and its pseudonymisation secret."""
    return secrets_dir / NODES_DIR / member


def node_keys_dir(secrets_dir: Path, member: str) -> Path:
    """State ``member``'s node key store (what ``PUENTE_POLICY__KEYS_DIR`` names)."""
    return node_dir(secrets_dir, member) / NODE_KEYS_SUBDIR


def gateway_keys_dir(secrets_dir: Path, member: str) -> Path:
    """State ``member``'s gateway key store (what ``PUENTE_GATEWAY__KEYS_DIR`` names)."""
    return secrets_dir / GATEWAYS_DIR / member / GATEWAY_KEYS_SUBDIR


def warnings_keys_dir(secrets_dir: Path) -> Path:
    """The early-warning evaluator's key store (what ``PUENTE_WARNINGS__KEYS_DIR`` names)."""
    return secrets_dir / WARNINGS_DIR / NODE_KEYS_SUBDIR


def _ensure_pseudonym_secret(path: Path) -> Path | None:
    """A node's pseudonymisation secret, shared by its instances; the path when new."""
    if path.exists():
        return None
    write_private(path, new_pseudonym_secret())
    return path


def _ensure_node_keys(store: KeyStore, member: str, now: int) -> bool:
    """A signing key, an encryption key and a witness key (usage witness) for
    ``node:<member>`` unless the store has one of each kind already (a rotated or revoked one
    included: replacing keys is the state's act)."""
    holder = node_holder(member)
    witness = Usage.WITNESS.value
    kinds = {
        "encryption" if m.is_encryption else "witness" if witness in m.usages else "signing"
        for m in store.key_metas()
        if m.holder == holder
    }
    if "signing" not in kinds:
        store.generate(holder, valid_from=now)
    if "encryption" not in kinds:
        store.generate_encryption(holder, valid_from=now)
    if "witness" not in kinds:
        store.generate(
            holder, valid_from=now, usages=(Usage.WITNESS,), name=witness_key_name(member)
        )
    return kinds != {"signing", "encryption", "witness"}


def _ensure_gateway_keys(store: KeyStore, member: str, now: int) -> bool:
    """An encryption key for ``member:<member>`` (what deliveries to the state are sealed to)
    unless the store has one already (a rotated or revoked one included)."""
    holder = member_holder(member)
    if any(m.holder == holder and m.is_encryption for m in store.key_metas()):
        return False
    store.generate_encryption(holder, valid_from=now)
    return True


def _ensure_warnings_key(store: KeyStore, now: int) -> bool:
    """A ``service:warnings`` key of usage early-warning unless the store has one (a rotated
    or revoked one included)."""
    holder = service_holder("warnings")
    if any(m.holder == holder for m in store.key_metas()):
        return False
    store.generate(holder, valid_from=now, usages=(Usage.EARLY_WARNING,))
    return True


def _import_keys(trust: KeyStore, source: KeyStore, holder: str) -> bool:
    """Copy the public part and description of every key of ``holder`` in ``source`` (a
    state's node or gateway key store) that the trust store lacks. Keys it has are left as the
    operator keeps them (an end or a revocation the operator set there is never undone from the
    state's copy)."""
    known = {m.key_id for m in trust.key_metas()}
    new = [m for m in source.key_metas() if m.holder == holder and m.key_id not in known]
    for meta in new:
        if meta.is_encryption:
            trust.import_encryption(
                source.encryption_public(meta), holder, valid_from=meta.valid_from
            )
        else:
            usages = [Usage(u) for u in meta.usages]
            trust.import_public(
                source.public(meta), holder, valid_from=meta.valid_from, usages=usages
            )
        trust.update(meta)  # with the end or revocation the state gave it
    return bool(new)


def _sign_trust_list(trust: KeyStore, floor: bytes, now: int) -> bool:
    """Sign a new trust list of the trust store's keys, pinning ``floor``, unless the signed one
    already says exactly that and is valid for a week more. True when signed anew."""
    anchors = [trust.public(m) for m in trust.key_metas() if m.holder == ROOT_HOLDER]
    wanted = trust.trust_list(
        serial=0, issued_at=now, expires_at=now + TRUST_LIST_MS, floor_digest=floor
    )
    path = trust.root / TRUST_LIST_FILE
    current = (
        TrustList.open(path.read_bytes(), anchors, now=now, strict=False)
        if path.is_file()
        else None
    )
    if (
        current is not None
        and not current.problems
        and current.expires_at - now >= RESIGN_WITHIN_MS
        and (current.entries, current.encryption_entries, current.floor_digest)
        == (wanted.entries, wanted.encryption_entries, wanted.floor_digest)
    ):
        return False
    try:
        root = trust.current(ROOT_HOLDER, usage=Usage.TRUST_LIST, at=now)
    except UntrustedKeyError:
        raise ConfigError(
            f"the trust list in {trust.root} needs signing and no operator root key is there",
            hint=f"puente keys trust-list build --dir {trust.root} --floor {floor.hex()} && "
            f"puente keys trust-list sign --dir {trust.root} --key <root.skey>, then run again",
        ) from None
    # A first list's serial is the time, so a list made anew never goes below one issued before.
    serial = current.serial + 1 if current is not None else now // 1000
    path.write_bytes(replace(wanted, serial=serial).sign(root))
    return True


def trust_public_files(secrets_dir: Path) -> dict[str, bytes]:
    """The public trust material every node and gateway reads from ``<state dir>/keys``: the
    operator root's keys as the key store keeps them (``.vkey`` and ``.json``, which
    ``Runtime.anchors`` reads), the same verifier keys one per line (``trust-anchors.txt``) and
    the signed trust list (``trust-list.note``, read when the trust topic has none)."""
    trust = secrets_dir / TRUST_DIR
    stem = ROOT_HOLDER.replace(":", "-") + "-"  # the key store's file names: <holder>-<key id>
    files = {
        p.name: p.read_bytes()
        for p in sorted(trust.iterdir())
        if p.name.startswith(stem) and p.suffix in (".vkey", ".json")
    }
    files[c.TRUST_ANCHORS_FILE] = b"".join(v for n, v in files.items() if n.endswith(".vkey"))
    files[TRUST_LIST_FILE] = (trust / TRUST_LIST_FILE).read_bytes()
    return files


def _write_trust_public(secrets_dir: Path) -> None:
    """Bring ``trust-public/`` to :func:`trust_public_files`, in place (a Compose bind mount
    follows the directory, not a replaced one)."""
    target = secrets_dir / TRUST_PUBLIC_DIR
    target.mkdir(mode=0o755, exist_ok=True)
    files = trust_public_files(secrets_dir)
    for path in target.iterdir():
        if path.name not in files:
            path.unlink()
    for name, data in files.items():
        path = target / name
        if not path.is_file() or path.read_bytes() != data:
            tmp = path.with_name(f".{name}.tmp")
            tmp.write_bytes(data)
            tmp.chmod(0o644)
            tmp.replace(path)


def state_material(secrets_dir: Path, inputs: c.DeployInputs) -> list[Path]:
    """Every state's node key store and pseudonymisation secret and its gateway's key store,
    the early-warning evaluator's key store, the operator's trust store with a signed trust list
    of their public parts, and the public trust material; the paths made or signed anew (a key
    store that got keys counts as one)."""
    now = now_ms()
    created: list[Path] = []
    trust = KeyStore(secrets_dir / TRUST_DIR)
    if not any(m.holder == ROOT_HOLDER for m in trust.key_metas()):
        trust.generate(ROOT_HOLDER, valid_from=now)
        created.append(trust.root)
    for member in inputs.members:
        store = KeyStore(node_keys_dir(secrets_dir, member))
        if _ensure_node_keys(store, member, now):
            created.append(store.root)
        secret = _ensure_pseudonym_secret(node_dir(secrets_dir, member) / c.NODE_PSEUDONYM_FILE)
        created += [secret] if secret else []
        _import_keys(trust, store, node_holder(member))
        gateway = KeyStore(gateway_keys_dir(secrets_dir, member))
        if _ensure_gateway_keys(gateway, member, now):
            created.append(gateway.root)
        _import_keys(trust, gateway, member_holder(member))
    evaluator = KeyStore(warnings_keys_dir(secrets_dir))
    if _ensure_warnings_key(evaluator, now):
        created.append(evaluator.root)
    _import_keys(trust, evaluator, service_holder("warnings"))
    if _sign_trust_list(trust, inputs.floor_digest, now):
        created.append(trust.root / TRUST_LIST_FILE)
    _write_trust_public(secrets_dir)
    return created


def compose_secrets(
    secrets_dir: Path,
    inputs: c.DeployInputs,
    *,
    env_file: Path | None = None,
    owner: tuple[int, int] | None = None,
) -> list[Path]:
    """Create the missing secret files; returns the paths created (existing ones are kept)."""
    created: list[Path] = []
    store = SecretStore(secrets_dir)
    for name in (ADMIN_USER, *(p.name for p in inputs.plan.principals)):
        _, new = store.get_or_create(name)
        if new:
            created.append(secrets_dir / f"{name}.json")
    broker = secrets_dir / c.BROKER_SECRET_FILE
    if not broker.exists():
        write_private(broker, f"username={BROKER_USER}\npassword={new_password()}\n".encode())
        created.append(broker)
    created += state_material(secrets_dir, inputs)
    cert, key_file = secrets_dir / c.GATEWAY_TLS_CERT, secrets_dir / c.GATEWAY_TLS_KEY
    if not cert.exists() or not key_file.exists():
        names = ["localhost", *(f"gateway-{m.lower()}" for m in inputs.members)]
        cert_pem, key_pem = self_signed_certificate(names, ["127.0.0.1"])
        write_private(key_file, key_pem)
        write_private(cert, cert_pem)
        created += [cert, key_file]
    if env_file is not None and not env_file.exists():
        write_private(
            env_file,
            (
                "# Generated by `puente deploy compose secrets`; not committed.\n"
                f"PUENTE_CLUSTER_ID={_random_cluster_id()}\n"
            ).encode(),
        )
        created.append(env_file)
    if owner is not None:
        _chown_tree(secrets_dir, owner)
    return created


def _chown_tree(directory: Path, owner: tuple[int, int]) -> None:
    """Give the files to the containers' user (bind-mounted secrets keep host ownership)."""
    uid, gid = owner
    try:
        os.chown(directory, uid, gid)
        for path in directory.rglob("*"):
            os.chown(path, uid, gid, follow_symlinks=False)
    except PermissionError as exc:
        raise ConfigError(
            f"cannot give {directory} to uid {uid}: {exc.strerror}",
            hint=f"run the command with sudo, or as the user with uid {uid}",
        ) from exc


def self_signed_certificate(
    dns_names: list[str], ips: list[str], *, days: int = 90
) -> tuple[bytes, bytes]:
    """A self-signed ECDSA P-256 server certificate and its key (PEM), for a test deployment."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns_names[0])])
    now = dt.datetime.now(dt.UTC)
    san: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    san += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


# --- Kubernetes ----------------------------------------------------------------------------------


def password_secret_name(principal: str) -> str:
    """The Kubernetes Secret holding a principal's password (KafkaUser refers to it)."""
    return f"{principal}-password"


def node_keys_secret_name(principal: str) -> str:
    """The Secret holding a node's key store (every file of ``nodes/CC/keys/``), or the
    evaluator's (``warnings/keys/``, principal ``<prefix>-svc-warnings``)."""
    return f"{principal}-keys"


def node_pseudonym_secret_name(principal: str) -> str:
    """The Secret holding a node's pseudonymisation secret."""
    return f"{principal}-pseudonym"


def gateway_keys_secret_name(member: str) -> str:
    """The Secret holding state ``member``'s gateway key store (every file of
    ``gateways/CC/keys/``)."""
    return f"puente-gateway-{member.lower()}-keys"


TRUST_CONFIGMAP = "puente-trust"


def k8s_secret_manifests(
    secrets_dir: Path, inputs: c.DeployInputs, *, namespace: str
) -> list[dict[str, Any]]:
    """Secret manifests for every principal's password, every node's key store and
    pseudonymisation secret, every state's gateway key store, and the evaluator's key store.

    Missing credentials and node material are generated into ``secrets_dir`` first (kept there:
    re-running renders the same Secrets), so the operator keeps the passwords to hand to member
    states. Each principal's Secret carries the password twice: as ``password`` (what Strimzi's
    KafkaUser reads) and as ``<principal>.json`` (what a Puente process reads from its secrets
    directory). A key store's Secret holds every file of its folder under its own name.
    """
    store = SecretStore(secrets_dir)
    docs: list[dict[str, Any]] = []
    for name in (ADMIN_USER, *(p.name for p in inputs.plan.principals)):
        cred, _ = store.get_or_create(name)
        body = json.dumps({"username": cred.username, "password": cred.password})
        data = {"password": cred.password, f"{name}.json": body}
        docs.append(_secret_manifest(password_secret_name(name), namespace, data))
    state_material(secrets_dir, inputs)
    for member in inputs.members:
        principal = inputs.naming.node_principal(member)
        data = _folder(node_keys_dir(secrets_dir, member))
        docs.append(_secret_manifest(node_keys_secret_name(principal), namespace, data))
        secret = node_dir(secrets_dir, member) / c.NODE_PSEUDONYM_FILE
        data = {c.NODE_PSEUDONYM_FILE: secret.read_text(encoding="ascii")}
        docs.append(_secret_manifest(node_pseudonym_secret_name(principal), namespace, data))
        data = _folder(gateway_keys_dir(secrets_dir, member))
        docs.append(_secret_manifest(gateway_keys_secret_name(member), namespace, data))
    evaluator = inputs.naming.service_principal("warnings")
    data = _folder(warnings_keys_dir(secrets_dir))
    docs.append(_secret_manifest(node_keys_secret_name(evaluator), namespace, data))
    return docs


def _folder(directory: Path) -> dict[str, str]:
    """Every file of a key store folder, by name (their names carry key ids)."""
    return {
        p.name: p.read_text(encoding="utf-8") for p in sorted(directory.iterdir()) if p.is_file()
    }


def k8s_trust_configmap(secrets_dir: Path, *, namespace: str) -> dict[str, Any]:
    """The ``puente-trust`` ConfigMap: :func:`trust_public_files` (public, made with the
    Secrets; run :func:`k8s_secret_manifests` first)."""
    data = {n: v.decode("utf-8") for n, v in trust_public_files(secrets_dir).items()}
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(TRUST_CONFIGMAP, namespace),
        "data": data,
    }


def _metadata(name: str, namespace: str) -> dict[str, Any]:
    return {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/part-of": "puente"}}


def _secret_manifest(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _metadata(name, namespace),
        "type": "Opaque",
        "stringData": data,
    }
