"""Secret material for a deployment, generated locally and never committed.

The operator's secrets folder (``deploy/compose/secrets/`` for Compose, git-ignored; any folder
for Kubernetes) holds, all private files 0600::

    admin.json, <principal>.json    every principal's SCRAM credential (SecretStore format),
                                    one per member state and per node among them
    kafka-broker.properties         the brokers' PLAIN password (Compose: FileConfigProvider)
    gateway-tls.crt, .key           a self-signed certificate for the gateways (Compose)
    roots/CC/keys/                  state CC's root key (member:CC, usage trust-list, named
                                    puente.root/CC): what CC signs trust lists with. Offline
                                    custody: no workload mounts it and no Secret carries it
                                    (absent when CC keeps its root itself and handed in the
                                    public part: ``puente keys import … --dir trust``)
    nodes/CC/keys/                  state CC's node key store (puente.evidence.keystore): its
                                    node:CC Ed25519 signing key (delivery, checkpoint,
                                    early-warning) and X25519 encryption key (agencies seal
                                    ingress to it; the node seals its own state to it)
    nodes/CC/policy-pseudonym.key   CC's node's pseudonymisation secret (its own)
    witnesses/CC/keys/              state CC's witness key store: its witness key alone
                                    (node:CC, usage witness, named puente.witness/CC)
    gateways/CC/keys/               state CC's gateway key store: its member:CC X25519
                                    encryption key (nodes seal deliveries to CC to it)
    warnings/keys/                  the early-warning evaluator's key store: its
                                    service:warnings Ed25519 key (usage early-warning)
    trust/                          the trust store (``puente keys --dir``, ``puente trust
                                    --dir``): public parts only — every state's root key, node,
                                    witness and gateway keys, the evaluator's key, every member
                                    key the operator imports — the signed trust list pinning
                                    the regional floor (trust-list.note), the genesis list
                                    (trust-genesis.note) and, short of quorum, the proposal
                                    (trust-list.proposed); a secrets folder made before the
                                    federation also keeps its old operator:root key here
    trust-public/                   what every node, witness, gateway and the evaluator mounts:
                                    the genesis list (their trust anchor) and the signed trust
                                    list; nothing private

Existing files are kept: rotation is a deliberate act (a new key file, then a new trust list;
deploy/README.md). Each run copies the public part of every root, node, witness and gateway key
the trust store lacks and, when the keys or the floor changed or the list nears expiry, has a
new list signed by the member states' roots (:func:`puente.evidence.trustissue.issue`, as
``puente demo`` does): with a quorum of root keys in ``roots/`` it signs and publishes it into
``trust-public/``; short of one it writes the proposal and fails naming the ``puente trust sign
--as CC`` commands that remain, and the list in force stays.

``k8s_secret_manifests`` turns the folder into Kubernetes Secret manifests (and
``k8s_trust_configmap`` the public trust material into a ConfigMap), written to a 0600 file for
``kubectl apply`` (never printed). The root keys are not among them: nothing in the cluster
signs trust lists, and a Secret would put every state's root within reach of whoever reads
Secrets in the namespace (or its etcd backups).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
from pathlib import Path
from typing import Any

from puente.deploy import contract as c
from puente.errors import ConfigError
from puente.evidence._time import now_ms
from puente.evidence.errors import TrustListError
from puente.evidence.keystore import (
    GENESIS_FILE,
    TRUST_LIST_FILE,
    KeyMeta,
    KeyStore,
    root_key_name,
)
from puente.evidence.trust import (
    ROOT_HOLDER,
    Usage,
    holder_state,
    member_holder,
    node_holder,
    service_holder,
)
from puente.evidence.trustissue import Issued, issue
from puente.evidence.witness import witness_key_name
from puente.kafka.broker_config import ADMIN_USER, BROKER_USER
from puente.secrets import SecretStore, new_password, write_private
from puente.service.secret import new_pseudonym_secret

NODES_DIR = "nodes"
WITNESSES_DIR = "witnesses"
ROOTS_DIR = "roots"
GATEWAYS_DIR = "gateways"
WARNINGS_DIR = "warnings"
TRUST_DIR = "trust"
TRUST_PUBLIC_DIR = "trust-public"
NODE_KEYS_SUBDIR = "keys"
GATEWAY_KEYS_SUBDIR = "keys"


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


def witness_keys_dir(secrets_dir: Path, member: str) -> Path:
    """State ``member``'s witness key store (what ``PUENTE_WITNESS__KEYS_DIR`` names)."""
    return secrets_dir / WITNESSES_DIR / member / NODE_KEYS_SUBDIR


def root_keys_dir(secrets_dir: Path, member: str) -> Path:
    """State ``member``'s root key store (``puente trust sign --as CC --dir``): mounted by
    nothing."""
    return secrets_dir / ROOTS_DIR / member / NODE_KEYS_SUBDIR


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
    """A signing key and an encryption key for ``node:<member>`` unless the store has one of
    each kind already (a rotated or revoked one included: replacing keys is the state's act).
    The state's witness key is not here (:func:`_ensure_witness_key`)."""
    holder = node_holder(member)
    kinds = {
        "encryption" if m.is_encryption else "signing"
        for m in store.key_metas()
        if m.holder == holder and Usage.WITNESS.value not in m.usages
    }
    if "signing" not in kinds:
        store.generate(holder, valid_from=now)
    if "encryption" not in kinds:
        store.generate_encryption(holder, valid_from=now)
    return kinds != {"signing", "encryption"}


def _ensure_witness_key(store: KeyStore, node: KeyStore, member: str, now: int) -> bool:
    """The state's witness key (``node:<member>``, usage witness) in its own store, unless it
    has one (a rotated or revoked one included). A secrets folder made when the node's store
    held it moves it here (the same key: no trust list changes) rather than making another."""
    holder = node_holder(member)

    def witness_keys(s: KeyStore) -> list[KeyMeta]:
        return [m for m in s.key_metas() if m.holder == holder and Usage.WITNESS.value in m.usages]

    if witness_keys(store):
        return False
    moved = [node.move(m.key_id, store) for m in witness_keys(node)]
    if not moved:
        store.generate(
            holder, valid_from=now, usages=(Usage.WITNESS,), name=witness_key_name(member)
        )
    return True


def _ensure_root_key(store: KeyStore, trust: KeyStore, member: str, now: int) -> bool:
    """State ``member``'s root key (``member:<member>``, usage trust-list) in its own store,
    unless it has one or the trust store has its public part already (the state keeps its
    root itself and handed that in)."""
    holder = member_holder(member)
    if any(
        m.holder == holder and Usage.TRUST_LIST.value in m.usages
        for s in (store, trust)
        for m in s.key_metas()
    ):
        return False
    store.generate(holder, valid_from=now, usages=(Usage.TRUST_LIST,), name=root_key_name(member))
    return True


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


def trust_public_files(secrets_dir: Path) -> dict[str, bytes]:
    """The public trust material every node, witness, gateway and the evaluator reads from
    ``<state dir>/keys``: the genesis list (``trust-genesis.note``, the anchor
    ``Runtime.anchors`` and the gateway take from there) and the signed trust list in force
    (``trust-list.note``, read when the trust topic has none). A secrets folder of a single-root
    deployment still waiting for its transition list keeps handing out what it did: the
    operator root's verifier keys (``.vkey``, ``.json``, and one per line in
    ``trust-anchors.txt``) and its list. Nothing before a first list is signed."""
    trust = secrets_dir / TRUST_DIR
    listed = trust / TRUST_LIST_FILE
    if not listed.is_file():
        return {}
    if (trust / GENESIS_FILE).is_file():
        return {n: (trust / n).read_bytes() for n in (GENESIS_FILE, TRUST_LIST_FILE)}
    stem = ROOT_HOLDER.replace(":", "-") + "-"  # the key store's file names: <holder>-<key id>
    files = {
        p.name: p.read_bytes()
        for p in sorted(trust.iterdir())
        if p.name.startswith(stem) and p.suffix in (".vkey", ".json")
    }
    files[c.TRUST_ANCHORS_FILE] = b"".join(v for n, v in files.items() if n.endswith(".vkey"))
    files[TRUST_LIST_FILE] = listed.read_bytes()
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
    """Every state's root key (unless it keeps its own), node key store and pseudonymisation
    secret, witness key store and gateway key store, the early-warning evaluator's key store,
    the trust store with a trust list of their public parts signed by the states' roots, and the
    public trust material; the paths made or signed anew (a key store that got keys counts as
    one). Short of a quorum of root signatures: :class:`TrustListError`
    (``TRUST_QUORUM_MISSING``) naming the signatures that remain, after everything else is
    written (the proposal in ``trust/``, the list in force kept in ``trust-public/``)."""
    now = now_ms()
    created: list[Path] = []
    trust = KeyStore(secrets_dir / TRUST_DIR)
    roots: list[KeyStore] = []
    for member in inputs.members:
        root = KeyStore(root_keys_dir(secrets_dir, member))
        if _ensure_root_key(root, trust, member, now):
            created.append(root.root)
        if root.root.is_dir():
            roots.append(root)
            _import_keys(trust, root, member_holder(member))
    for member in inputs.members:
        store = KeyStore(node_keys_dir(secrets_dir, member))
        if _ensure_node_keys(store, member, now):
            created.append(store.root)
        secret = _ensure_pseudonym_secret(node_dir(secrets_dir, member) / c.NODE_PSEUDONYM_FILE)
        created += [secret] if secret else []
        witness = KeyStore(witness_keys_dir(secrets_dir, member))
        if _ensure_witness_key(witness, store, member, now):
            created.append(witness.root)
        for source in (store, witness):
            _import_keys(trust, source, node_holder(member))
        gateway = KeyStore(gateway_keys_dir(secrets_dir, member))
        if _ensure_gateway_keys(gateway, member, now):
            created.append(gateway.root)
        _import_keys(trust, gateway, member_holder(member))
    evaluator = KeyStore(warnings_keys_dir(secrets_dir))
    if _ensure_warnings_key(evaluator, now):
        created.append(evaluator.root)
    _import_keys(trust, evaluator, service_holder("warnings"))
    # The trust store signs too when it keeps a single-root deployment's operator root: the
    # transition list needs it.
    issued = issue(trust, [*roots, trust], floor=inputs.floor_digest, now=now)
    if issued.changed:
        created.append(trust.root / TRUST_LIST_FILE)
    _write_trust_public(secrets_dir)
    if issued.proposal is not None:
        raise _quorum_missing(secrets_dir, issued)
    return created


def _quorum_missing(secrets_dir: Path, issued: Issued) -> TrustListError:
    """What the operator is told when the next list lacks root signatures: each state that
    may still sign, with the command it runs where it keeps its root key."""
    proposal = issued.proposal
    assert proposal is not None
    steps = []
    for holder in issued.missing:
        who = "root" if holder == ROOT_HOLDER else holder_state(holder) or holder
        where = (
            "<where the old operator root key is kept>"
            if holder == ROOT_HOLDER
            else f"<{who}'s root key directory>"
        )
        steps.append(f"puente trust sign --as {who} --in {proposal} --dir {where}")
    return TrustListError(
        f"the next trust list needs {issued.needed} more root signature(s) "
        f"(of {', '.join(issued.missing)}); proposal written to {proposal}, the list in force "
        f"is kept",
        reason="TRUST_QUORUM_MISSING",
        hint=f"{issued.needed} of: " + "; ".join(steps) + "; then run this command again",
    )


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
    try:
        created += state_material(secrets_dir, inputs)
    finally:  # short of quorum too: the proposal is signed by whoever owns the folder
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
    """The Secret holding a node's key store (every file of ``nodes/CC/keys/``), a witness's
    (``witnesses/CC/keys/``, principal ``<prefix>-witness-cc``) or the evaluator's
    (``warnings/keys/``, principal ``<prefix>-svc-warnings``)."""
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
    pseudonymisation secret, every state's witness and gateway key stores, and the evaluator's
    key store — never a root key (``roots/`` stays in offline custody: module docstring).

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
        witness = inputs.naming.witness_principal(member)
        data = _folder(witness_keys_dir(secrets_dir, member))
        docs.append(_secret_manifest(node_keys_secret_name(witness), namespace, data))
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
