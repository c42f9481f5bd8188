"""The secrets folder a deployment is made from: each state's node and gateway key stores, the
operator's trust store and signed trust list, the public trust material — and a node key's
rotation by a new key file and a new trust list."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from puente.deploy import contract
from puente.deploy import k8s as k
from puente.deploy.material import (
    TRUST_DIR,
    TRUST_PUBLIC_DIR,
    gateway_keys_dir,
    k8s_secret_manifests,
    k8s_trust_configmap,
    node_keys_dir,
    state_material,
    trust_public_files,
    warnings_keys_dir,
)
from puente.errors import ConfigError
from puente.evidence._time import now_ms
from puente.evidence.keys import read_private_key
from puente.evidence.keystore import TRUST_LIST_FILE, KeyStore
from puente.evidence.note import Note
from puente.evidence.trust import (
    ROOT_HOLDER,
    TrustList,
    Usage,
    member_holder,
    node_holder,
    service_holder,
)
from puente.evidence.trustsource import read_anchors

REPO = Path(__file__).resolve().parents[3]
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def inputs() -> contract.DeployInputs:
    return contract.deploy_inputs(REPO / "policies")


def _signed_list(secrets: Path) -> TrustList:
    """The signed trust list, verified with the public material's anchors (as a node does)."""
    anchors = read_anchors(secrets / TRUST_PUBLIC_DIR / contract.TRUST_ANCHORS_FILE)
    data = (secrets / TRUST_PUBLIC_DIR / TRUST_LIST_FILE).read_bytes()
    assert data == (secrets / TRUST_DIR / TRUST_LIST_FILE).read_bytes()
    return TrustList.open(data, anchors, now=now_ms())  # strict: signed, unexpired


def test_each_node_gets_its_own_keys_and_the_trust_list_names_them(
    tmp_path: Path, inputs: contract.DeployInputs
) -> None:
    state_material(tmp_path, inputs)
    tl = _signed_list(tmp_path)
    assert tl.floor_digest == inputs.floor_digest  # the regional floor every node must run
    now = now_ms()
    seen: set[str] = set()
    for member in inputs.members:
        store = KeyStore(node_keys_dir(tmp_path, member))
        metas = store.key_metas()
        assert {m.holder for m in metas} == {node_holder(member)}  # nobody else's keys
        witness = Usage.WITNESS.value
        (signing,) = [m for m in metas if not m.is_encryption and witness not in m.usages]
        (sealing,) = [m for m in metas if m.is_encryption]
        (cosigning,) = [m for m in metas if witness in m.usages]
        assert cosigning.usages == (witness,) and cosigning.name == f"puente.witness/{member}"
        # One signing key: deliveries, checkpoints and early-warning aggregates.
        assert set(signing.usages) == {
            Usage.DELIVERY.value,
            Usage.CHECKPOINT.value,
            Usage.EARLY_WARNING.value,
        }
        key = store.current(node_holder(member), usage=Usage.DELIVERY, at=now)
        assert tl.entry(key.key_id).holder == node_holder(member)
        assert tl.encryption_key(node_holder(member), at=now).key_id == sealing.key_id
        assert store.keyring(node_holder(member)).get(sealing.key_id) is not None
        for path in store.root.glob("*.skey"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        seen |= {signing.key_id, sealing.key_id, cosigning.key_id}
    assert len(seen) == 3 * len(inputs.members)  # no key shared between states


def test_each_state_s_gateway_gets_its_member_key_and_the_trust_list_names_it(
    tmp_path: Path, inputs: contract.DeployInputs
) -> None:
    """State CC's gateway key store holds one key: ``member:CC``'s encryption key, which the
    signed trust list names, so nodes seal deliveries to CC to it and CC's gateway opens
    them."""
    state_material(tmp_path, inputs)
    tl = _signed_list(tmp_path)
    now = now_ms()
    seen: set[str] = set()
    for member in inputs.members:
        store = KeyStore(gateway_keys_dir(tmp_path, member))
        (meta,) = store.key_metas()
        assert meta.holder == member_holder(member) and meta.is_encryption
        assert tl.encryption_key(member_holder(member), at=now).key_id == meta.key_id
        assert store.keyring(member_holder(member)).get(meta.key_id) is not None
        for path in store.root.glob("*.skey"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        seen.add(meta.key_id)
    assert len(seen) == len(inputs.members)


def test_no_private_part_leaves_its_folder(tmp_path: Path, inputs: contract.DeployInputs) -> None:
    """The trust store holds the nodes' and gateways' public parts only (the root's private key
    is the one .skey there); the public material holds no private key at all."""
    state_material(tmp_path, inputs)
    trust = KeyStore(tmp_path / TRUST_DIR)
    private = [p for p in trust.root.iterdir() if p.suffix == ".skey"]
    (root,) = [m for m in trust.key_metas() if m.holder == ROOT_HOLDER]
    assert [read_private_key(p).key_id for p in private] == [root.key_id]
    public = tmp_path / TRUST_PUBLIC_DIR
    files = trust_public_files(tmp_path)
    assert sorted(p.name for p in public.iterdir()) == sorted(files)
    assert not [n for n, data in files.items() if b"PRIVATE+KEY" in data or n.endswith(".skey")]
    assert [k.key_id for k in read_anchors(public / contract.TRUST_ANCHORS_FILE)] == [root.key_id]
    cm = k8s_trust_configmap(tmp_path, namespace=k.NAMESPACE)
    assert cm["kind"] == "ConfigMap" and set(cm["data"]) == set(files)


def test_a_second_run_changes_nothing(tmp_path: Path, inputs: contract.DeployInputs) -> None:
    first = state_material(tmp_path, inputs)
    assert tmp_path / TRUST_DIR / TRUST_LIST_FILE in first
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert state_material(tmp_path, inputs) == []
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


def test_a_node_key_rotates_by_a_new_key_file_and_a_new_trust_list(
    tmp_path: Path, inputs: contract.DeployInputs
) -> None:
    """The state adds a key file valid from T; the next run copies its public part into the
    trust store and signs a new list (serial + 1) naming both keys; the node signs with the
    old key before T and with the new one from T, and both keep verifying."""
    state_material(tmp_path, inputs)
    old_list = _signed_list(tmp_path)
    store = KeyStore(node_keys_dir(tmp_path, "MX"))
    now = now_ms()
    old = store.current(node_holder("MX"), usage=Usage.DELIVERY, at=now)
    switch = now + HOUR_MS
    new, _ = store.generate(node_holder("MX"), valid_from=switch)

    made = state_material(tmp_path, inputs)
    assert made == [tmp_path / TRUST_DIR / TRUST_LIST_FILE]  # nothing else was made
    tl = _signed_list(tmp_path)
    assert tl.serial == old_list.serial + 1
    assert tl.entry(old.key_id).status_at(now) == "valid"
    assert tl.entry(new.key_id).valid_from == switch
    assert store.current(node_holder("MX"), usage=Usage.DELIVERY, at=now).key_id == old.key_id
    after = store.current(node_holder("MX"), usage=Usage.DELIVERY, at=switch)
    assert after.key_id == new.key_id
    assert tl.entry(old.key_id).status_at(switch) == "valid"  # evidence from before still checks
    # Nodes read the new list from the public material.
    assert (tmp_path / TRUST_PUBLIC_DIR / TRUST_LIST_FILE).read_bytes() == (
        tmp_path / TRUST_DIR / TRUST_LIST_FILE
    ).read_bytes()


def test_the_operator_s_revocation_is_never_undone(
    tmp_path: Path, inputs: contract.DeployInputs
) -> None:
    state_material(tmp_path, inputs)
    now = now_ms()
    key = KeyStore(node_keys_dir(tmp_path, "GT")).current(
        node_holder("GT"), usage=Usage.DELIVERY, at=now
    )
    KeyStore(tmp_path / TRUST_DIR).revoke(key.key_id, since=now)
    state_material(tmp_path, inputs)  # signs the revocation; the node's copy does not undo it
    state_material(tmp_path, inputs)
    assert _signed_list(tmp_path).entry(key.key_id).revoked_since == now


def test_a_new_floor_is_pinned_by_a_new_list(tmp_path: Path, inputs: contract.DeployInputs) -> None:
    state_material(tmp_path, inputs)
    serial = _signed_list(tmp_path).serial
    other = contract.DeployInputs(
        inputs.naming, inputs.members, inputs.plan, bytes(32), inputs.partitions, inputs.brokers
    )
    state_material(tmp_path, other)
    tl = _signed_list(tmp_path)
    assert tl.floor_digest == bytes(32) and tl.serial == serial + 1


def test_without_the_root_key_a_needed_signature_is_an_error(
    tmp_path: Path, inputs: contract.DeployInputs
) -> None:
    """An operator who keeps the root key offline signs with `puente keys trust-list sign`; the
    command then refuses to hand out a list that does not name a new key, instead of serving a
    stale one."""
    state_material(tmp_path, inputs)
    trust = KeyStore(tmp_path / TRUST_DIR)
    (root,) = [m for m in trust.key_metas() if m.holder == ROOT_HOLDER]
    offline = read_private_key(trust.root / f"operator-root-{root.key_id}.skey")
    trust.delete_private(root.key_id)
    assert state_material(tmp_path, inputs) == []  # up to date: nothing to sign
    KeyStore(node_keys_dir(tmp_path, "CR")).generate(node_holder("CR"), valid_from=now_ms())
    with pytest.raises(ConfigError, match="needs signing") as caught:
        state_material(tmp_path, inputs)
    assert "puente keys trust-list sign" in (caught.value.hint or "")
    # Signed offline as the hint says, the next run passes and publishes it.
    unsigned = trust.trust_list(
        serial=_signed_list(tmp_path).serial + 1,
        issued_at=now_ms(),
        expires_at=now_ms() + 30 * 24 * HOUR_MS,
        floor_digest=inputs.floor_digest,
    )
    (trust.root / TRUST_LIST_FILE).write_bytes(unsigned.sign(offline))
    assert state_material(tmp_path, inputs) == []
    assert Note.parse((tmp_path / TRUST_PUBLIC_DIR / TRUST_LIST_FILE).read_bytes())


def test_the_evaluator_gets_its_own_key_and_the_trust_list_names_it(
    tmp_path: Path, inputs: contract.DeployInputs
) -> None:
    """`puente serve warnings` signs with a service:warnings key of usage early-warning alone,
    kept in its own folder; the operator's trust list names its public part."""
    state_material(tmp_path, inputs)
    store = KeyStore(warnings_keys_dir(tmp_path))
    (meta,) = store.key_metas()
    assert meta.holder == service_holder("warnings")
    assert meta.usages == (Usage.EARLY_WARNING.value,)
    key = store.current(meta.holder, usage=Usage.EARLY_WARNING, at=now_ms())
    entry = _signed_list(tmp_path).entry(key.key_id)
    assert entry.holder == meta.holder and entry.usages == {Usage.EARLY_WARNING}
    assert state_material(tmp_path, inputs) == []  # kept, not made again


def test_k8s_secrets_hold_each_node_s_and_gateway_s_own_folder(
    tmp_path: Path, inputs: contract.DeployInputs
) -> None:
    docs = {
        d["metadata"]["name"]: d["stringData"]
        for d in k8s_secret_manifests(tmp_path, inputs, namespace=k.NAMESPACE)
    }
    for member in inputs.members:
        principal = inputs.naming.node_principal(member)
        folder = node_keys_dir(tmp_path, member)
        assert docs[f"{principal}-keys"] == {
            p.name: p.read_text() for p in folder.iterdir() if p.is_file()
        }
        assert set(docs[f"{principal}-pseudonym"]) == {contract.NODE_PSEUDONYM_FILE}
        folder = gateway_keys_dir(tmp_path, member)
        assert docs[f"puente-gateway-{member.lower()}-keys"] == {
            p.name: p.read_text() for p in folder.iterdir() if p.is_file()
        }
    evaluator = inputs.naming.service_principal("warnings")
    folder = warnings_keys_dir(tmp_path)
    assert docs[f"{evaluator}-keys"] == {
        p.name: p.read_text() for p in folder.iterdir() if p.is_file()
    }
    assert not [n for n in docs if "svc-policy" in n or n == "puente-policy-signing-key"]
