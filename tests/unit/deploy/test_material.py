"""The secrets folder a deployment is made from: each state's node and gateway key stores, the
operator's trust store and signed trust list, the public trust material — and a node key's
rotation by a new key file and a new trust list."""

from __future__ import annotations

import shutil
import stat
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from puente.app.commands.keys import keys_app
from puente.app.commands.trust import app as trust_app
from puente.codec.registry import Registry
from puente.deploy import contract
from puente.deploy import k8s as k
from puente.deploy.material import (
    TRUST_DIR,
    TRUST_PUBLIC_DIR,
    gateway_keys_dir,
    k8s_secret_manifests,
    k8s_trust_configmap,
    node_keys_dir,
    root_keys_dir,
    state_material,
    trust_public_files,
    warnings_keys_dir,
    witness_keys_dir,
)
from puente.evidence._time import now_ms
from puente.evidence.errors import TrustListError
from puente.evidence.keys import SigningKey
from puente.evidence.keystore import GENESIS_FILE, TRUST_LIST_FILE, KeyStore
from puente.evidence.note import Note
from puente.evidence.trust import (
    ROOT_HOLDER,
    TrustAnchor,
    TrustList,
    Usage,
    majority,
    member_holder,
    node_holder,
    service_holder,
)
from puente.evidence.trustissue import PROPOSAL_FILE, read_note
from puente.evidence.trustsource import TrustTracker, local_anchor, read_anchors
from puente.evidence.witness import witness_key_name

REPO = Path(__file__).resolve().parents[3]
REGISTRY = Registry.load(REPO / "schemas")
HOUR_MS = 3_600_000


@pytest.fixture(scope="module")
def inputs() -> contract.DeployInputs:
    return contract.deploy_inputs(REPO / "policies")


@pytest.fixture(scope="module")
def three(inputs: contract.DeployInputs) -> contract.DeployInputs:
    """Three member states (a quorum of 2): what the federation tests sign by hand."""
    return replace(inputs, members=("AR", "BR", "MX"))


def _signed_list(secrets: Path) -> TrustList:
    """The signed trust list, verified as a node does: anchored on the genesis list of the
    public material, strictly (a quorum of the roots, unexpired)."""
    public = secrets / TRUST_PUBLIC_DIR
    tracker = TrustTracker(local_anchor(public) or TrustAnchor((), 1), REGISTRY)
    data = (public / TRUST_LIST_FILE).read_bytes()
    assert data == (secrets / TRUST_DIR / TRUST_LIST_FILE).read_bytes()
    assert tracker.offer(data)
    assert tracker.current is not None
    return tracker.current


def test_each_node_gets_its_own_keys_and_the_trust_list_names_them(
    tmp_path: Path, inputs: contract.DeployInputs
) -> None:
    """A node's store holds its signing and encryption keys; the state's witness key is in the
    witness's own store, nowhere else; the signed list names all three."""
    state_material(tmp_path, inputs)
    tl = _signed_list(tmp_path)
    assert tl.floor_digest == inputs.floor_digest  # the regional floor every node must run
    now = now_ms()
    seen: set[str] = set()
    for member in inputs.members:
        store = KeyStore(node_keys_dir(tmp_path, member))
        metas = store.key_metas()
        assert {m.holder for m in metas} == {node_holder(member)}  # nobody else's keys
        (signing,) = [m for m in metas if not m.is_encryption]
        (sealing,) = [m for m in metas if m.is_encryption]
        witness = KeyStore(witness_keys_dir(tmp_path, member))
        (cosigning,) = witness.key_metas()  # the witness key alone
        assert cosigning.holder == node_holder(member)
        assert cosigning.usages == (Usage.WITNESS.value,)
        assert cosigning.name == f"puente.witness/{member}"
        assert tl.entry(cosigning.key_id).usages == {Usage.WITNESS}
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
        for path in [*store.root.glob("*.skey"), *witness.root.glob("*.skey")]:
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


def test_the_genesis_list_is_signed_by_a_majority_of_the_states_roots(
    tmp_path: Path, inputs: contract.DeployInputs
) -> None:
    """Each state gets its own root key in its own folder; the first list names the twenty
    roots with a quorum of 11 and carries their signatures; it is the genesis list the public
    material hands out as the anchor, and no operator key is in it."""
    state_material(tmp_path, inputs)
    public = tmp_path / TRUST_PUBLIC_DIR
    genesis = (public / GENESIS_FILE).read_bytes()
    assert genesis == (public / TRUST_LIST_FILE).read_bytes()  # the first list is the genesis
    anchor = TrustAnchor.genesis(genesis)
    assert anchor.k == 11 == majority(20)
    assert anchor.holders == {member_holder(m) for m in inputs.members}
    roots = {}
    for member in inputs.members:
        (root,) = KeyStore(root_keys_dir(tmp_path, member)).key_metas()
        assert root.holder == member_holder(member) and root.usages == (Usage.TRUST_LIST.value,)
        assert root.name == f"puente.root/{member}"
        roots[root.key_id] = member
    tl = _signed_list(tmp_path)
    assert set(tl.signed_by) == set(roots)  # every state's root signed it
    assert not [e for e in tl.entries if e.holder.startswith("operator:")]
    # k of n, not all: eleven of the twenty signatures are a list every verifier takes...
    note = Note.parse(genesis)
    eleven = replace(note, signatures=note.signatures[:11])
    assert TrustList.open(eleven.to_bytes(), anchor, now=now_ms()).quorum == 11
    # ...ten are not.
    ten = replace(note, signatures=note.signatures[:10])
    with pytest.raises(TrustListError) as exc:
        TrustList.open(ten.to_bytes(), anchor, now=now_ms())
    assert exc.value.reason == "TRUST_QUORUM_MISSING"


def test_no_private_part_leaves_its_folder(tmp_path: Path, inputs: contract.DeployInputs) -> None:
    """The trust store holds public parts only (the roots' too); the public material holds the
    genesis list and the signed list, no key at all."""
    state_material(tmp_path, inputs)
    trust = KeyStore(tmp_path / TRUST_DIR)
    assert not [p for p in trust.root.iterdir() if p.suffix == ".skey"]
    root_ids = {m.key_id for m in trust.key_metas() if Usage.TRUST_LIST.value in m.usages}
    assert len(root_ids) == len(inputs.members)
    assert not [m for m in trust.key_metas() if m.holder == ROOT_HOLDER]
    public = tmp_path / TRUST_PUBLIC_DIR
    files = trust_public_files(tmp_path)
    assert sorted(p.name for p in public.iterdir()) == sorted(files)
    assert sorted(files) == [GENESIS_FILE, TRUST_LIST_FILE]
    assert not [n for n, data in files.items() if b"PRIVATE+KEY" in data]
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


def _federation(tmp_path: Path, inputs: contract.DeployInputs) -> tuple[Path, dict[str, str]]:
    """A secrets folder of a real federation: each state makes its root key in its own
    directory and hands in the public part, which the operator imports into the trust store
    before the first run. Returns the folder and each state's root key directory."""
    secrets = tmp_path / "secrets"
    own = {}
    for member in inputs.members:
        own[member] = str(tmp_path / "states" / member)
        run(keys_app, "generate", "--for", member, "--usage", "trust-list", "--dir", own[member])
        (vkey,) = Path(own[member]).glob("member-*.vkey")
        trust = str(secrets / TRUST_DIR)
        run(keys_app, "import", str(vkey), "--for", member, "--usage", "trust-list", "--dir", trust)
    return secrets, own


def _short_of_quorum(secrets: Path, inputs: contract.DeployInputs) -> TrustListError:
    with pytest.raises(TrustListError) as exc:
        state_material(secrets, inputs)
    assert exc.value.reason == "TRUST_QUORUM_MISSING"
    return exc.value


def run(app: typer.Typer, *args: str) -> str:
    res = CliRunner().invoke(app, list(args))
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


def test_states_that_keep_their_roots_sign_the_genesis_list_themselves(
    tmp_path: Path, three: contract.DeployInputs
) -> None:
    """With every root public only, the run makes the keys and writes the first list as a
    proposal, never as the list in force: nothing is handed to the nodes, and the error names
    each state's `puente trust sign` command. Signed by one state it is still short (2 of 3
    needed); by a second, the next run takes it as the genesis list and publishes it."""
    secrets, own = _federation(tmp_path, three)
    proposal = secrets / TRUST_DIR / PROPOSAL_FILE
    error = _short_of_quorum(secrets, three)
    assert "2 more root signature(s)" in error.message
    for member in three.members:
        assert f"puente trust sign --as {member} --in {proposal}" in (error.hint or "")
    assert proposal.is_file()
    assert not (secrets / TRUST_DIR / TRUST_LIST_FILE).exists()
    assert not (secrets / TRUST_DIR / GENESIS_FILE).exists()
    assert list((secrets / TRUST_PUBLIC_DIR).iterdir()) == []  # nothing a node could take
    assert node_keys_dir(secrets, "MX").is_dir()  # everything else was made
    assert not (secrets / "roots").exists()  # the states keep their roots

    run(trust_app, "sign", "--as", "AR", "--in", str(proposal), "--dir", own["AR"])
    error = _short_of_quorum(secrets, three)  # one of the two signatures: still a proposal
    assert "1 more root signature(s)" in error.message and "--as AR" not in (error.hint or "")
    assert not (secrets / TRUST_DIR / TRUST_LIST_FILE).exists()

    run(trust_app, "sign", "--as", "MX", "--in", str(proposal), "--dir", own["MX"])
    made = state_material(secrets, three)
    assert secrets / TRUST_DIR / TRUST_LIST_FILE in made and not proposal.exists()
    tl = _signed_list(secrets)
    assert TrustAnchor.genesis((secrets / TRUST_PUBLIC_DIR / GENESIS_FILE).read_bytes()).k == 2
    assert len(tl.signed_by) == 2 and tl.quorum == 2
    assert state_material(secrets, three) == []  # in force: nothing more to sign


def test_a_change_short_of_quorum_keeps_the_list_in_force(
    tmp_path: Path, three: contract.DeployInputs
) -> None:
    """A node key added while the roots are offline: the next list is a proposal (the nodes
    keep the list in force, byte for byte); signed by a quorum it follows the genesis list."""
    secrets, own = _federation(tmp_path, three)
    proposal = secrets / TRUST_DIR / PROPOSAL_FILE
    _short_of_quorum(secrets, three)
    for member in ("AR", "BR"):
        run(trust_app, "sign", "--as", member, "--in", str(proposal), "--dir", own[member])
    state_material(secrets, three)
    genesis = _signed_list(secrets)
    public = {p.name: p.read_bytes() for p in (secrets / TRUST_PUBLIC_DIR).iterdir()}

    new, _ = KeyStore(node_keys_dir(secrets, "MX")).generate(
        node_holder("MX"), valid_from=now_ms() + HOUR_MS
    )
    error = _short_of_quorum(secrets, three)
    assert {p.name: p.read_bytes() for p in (secrets / TRUST_PUBLIC_DIR).iterdir()} == public
    assert TrustList.from_text(read_note(proposal.read_bytes()).text).serial == genesis.serial + 1
    assert _short_of_quorum(secrets, three).hint == error.hint  # the same proposal, kept
    for member in ("MX", "BR"):
        run(trust_app, "sign", "--as", member, "--in", str(proposal), "--dir", own[member])
    state_material(secrets, three)
    tl = _signed_list(secrets)  # taken by a verifier anchored on the genesis list
    assert tl.serial == genesis.serial + 1 and tl.entry(new.key_id).holder == node_holder("MX")


def _single_root_folder(secrets: Path, inputs: contract.DeployInputs) -> SigningKey:
    """A secrets folder as `puente deploy` made it before the federation: the operator root
    (in the trust store) signs the list alone, each state's witness key sits in its node's
    store, the public material anchors on the root's verifier key. Returns the root."""
    now = now_ms() - 1000
    trust = KeyStore(secrets / TRUST_DIR)
    root, _ = trust.generate(ROOT_HOLDER, valid_from=now)
    for member in inputs.members:
        node = KeyStore(node_keys_dir(secrets, member))
        holder = node_holder(member)
        node.generate(holder, valid_from=now)
        node.generate_encryption(holder, valid_from=now)
        node.generate(
            holder, valid_from=now, usages=(Usage.WITNESS,), name=witness_key_name(member)
        )
        for meta in node.key_metas():
            if meta.is_encryption:
                trust.import_encryption(node.encryption_public(meta), holder, valid_from=now)
            else:
                usages = [Usage(u) for u in meta.usages]
                trust.import_public(node.public(meta), holder, valid_from=now, usages=usages)
    legacy = trust.trust_list(
        serial=5, issued_at=now, expires_at=now + 720 * HOUR_MS, floor_digest=inputs.floor_digest
    )
    (trust.root / TRUST_LIST_FILE).write_bytes(legacy.sign(root))
    public = secrets / TRUST_PUBLIC_DIR
    public.mkdir()
    for name, data in trust_public_files(secrets).items():
        (public / name).write_bytes(data)
    return root


def _public(secrets: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (secrets / TRUST_PUBLIC_DIR).iterdir()}


def test_a_single_root_folder_moves_to_the_quorum_by_one_transition_list(
    tmp_path: Path, three: contract.DeployInputs
) -> None:
    """The first run on an old secrets folder makes the states' roots and signs one transition
    list with the old operator root AND a quorum of them: a node still anchored on the root
    takes it, a node started afterwards anchors on it (the genesis list), and from then on the
    root alone signs nothing anyone takes. Each witness key moves, unchanged, into the
    witness's own store."""
    secrets = tmp_path / "secrets"
    root = _single_root_folder(secrets, three)
    anchors = read_anchors(secrets / TRUST_PUBLIC_DIR / contract.TRUST_ANCHORS_FILE)
    assert [key.key_id for key in anchors] == [root.key_id]
    running = TrustTracker(anchors, REGISTRY)  # a node started before the move
    assert running.offer((secrets / TRUST_PUBLIC_DIR / TRUST_LIST_FILE).read_bytes())
    cosigning = {
        member: [
            m.key_id
            for m in KeyStore(node_keys_dir(secrets, member)).key_metas()
            if m.usages == (Usage.WITNESS.value,)
        ]
        for member in three.members
    }

    state_material(secrets, three)
    transition = (secrets / TRUST_PUBLIC_DIR / TRUST_LIST_FILE).read_bytes()
    assert running.offer(transition)  # co-signed by the old root
    tl = running.current
    assert tl is not None and tl.serial == 6 and tl.quorum == 2
    assert set(tl.roots(at=tl.issued_at)) == {member_holder(m) for m in three.members}
    assert root.key_id in tl.signed_by and len(tl.signed_by) == 1 + len(three.members)
    assert sorted(_public(secrets)) == [GENESIS_FILE, TRUST_LIST_FILE]
    assert _public(secrets)[GENESIS_FILE] == transition
    assert _signed_list(secrets).serial == 6  # a node started now, anchored on the genesis
    for member, ids in cosigning.items():
        assert [m.key_id for m in KeyStore(witness_keys_dir(secrets, member)).key_metas()] == ids
        node = KeyStore(node_keys_dir(secrets, member)).key_metas()
        assert not [m for m in node if Usage.WITNESS.value in m.usages]
        assert tl.entry(ids[0]).usages == {Usage.WITNESS}
    # The operator root alone makes nothing a verifier takes any more.
    later = KeyStore(secrets / TRUST_DIR).trust_list(
        serial=7, issued_at=tl.issued_at, expires_at=tl.expires_at
    )
    with pytest.raises(TrustListError) as exc:
        running.offer(later.sign(root))
    assert exc.value.reason == "TRUST_LIST_UNTRUSTED"
    assert state_material(secrets, three) == []


def test_the_transition_list_waits_for_an_offline_operator_root(
    tmp_path: Path, three: contract.DeployInputs
) -> None:
    """Kept offline, the old root must still sign the transition list: until it has, the run
    writes a proposal (the members' signatures on it), names `puente trust sign --as root`
    and leaves the single-root material as it was."""
    secrets = tmp_path / "secrets"
    root = _single_root_folder(secrets, three)
    offline = tmp_path / "offline"
    offline.mkdir(mode=0o700)
    trust = KeyStore(secrets / TRUST_DIR)
    for path in trust.root.glob(f"operator-root-{root.key_id}.*"):
        shutil.copy2(path, offline / path.name)
    trust.delete_private(root.key_id)
    before = _public(secrets)
    error = _short_of_quorum(secrets, three)
    proposal = secrets / TRUST_DIR / PROPOSAL_FILE
    assert f"puente trust sign --as root --in {proposal}" in (error.hint or "")
    assert "--as AR" not in (error.hint or "")  # the members' roots are here: they signed
    assert _public(secrets) == before

    run(trust_app, "sign", "--as", "root", "--in", str(proposal), "--dir", str(offline))
    state_material(secrets, three)
    running = TrustTracker([root.public], REGISTRY)
    assert running.offer(_public(secrets)[TRUST_LIST_FILE])
    assert running.current is not None and running.current.quorum == 2


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
        folder = witness_keys_dir(tmp_path, member)
        assert docs[f"{inputs.naming.witness_principal(member)}-keys"] == {
            p.name: p.read_text() for p in folder.iterdir() if p.is_file()
        }
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
    # The states' roots stay in offline custody: no Secret carries one.
    roots = [root_keys_dir(tmp_path, m) for m in inputs.members]
    root_files = {p.name for folder in roots for p in folder.iterdir()}
    assert len(root_files) >= 3 * len(inputs.members)
    assert not [n for data in docs.values() for n in data if n in root_files]
