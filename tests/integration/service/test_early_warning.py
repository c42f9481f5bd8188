"""Early warning end to end on the real broker, on the node model: each state's node counts its
own accepted notices and publishes signed aggregates (small cells suppressed, its raw counts
sealed to itself), ``puente serve warnings`` evaluates them.

Windows are seconds long here (a test trigger set). The surge's notices are dated in a window
that has not started when they are published (the service accepts event times a few minutes
ahead), so "the right window" is decided by the data, and no notice can arrive after its window
closed, however slow the machine. Waits are for conditions (what the services have published),
never for a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import shutil
import signal
import sys
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from puente.codec.wire import encode
from puente.evidence.trust import Usage, service_holder
from puente.evidence.trustsource import TrustTracker
from puente.kafka.clients import consumer, producer, start
from puente.kafka.trustfeed import TrustTopicReader
from puente.notices import CONSULAR_NOTIFICATION
from puente.service.aggregates import STATE_KEY, Aggregation, state_name
from puente.service.changelog import Changelog
from puente.service.nodekeys import NodeVault
from puente.synth.generator import Generator
from puente.topics import AGGREGATES, PARTIALS, STATE, WARNINGS
from puente.warnings.aggregate import Aggregate
from puente.warnings.evaluator import EarlyWarning, recompute
from puente.warnings.loader import load_triggers
from puente.warnings.privacy import disclosure_problems
from puente.warnings.service import WarningsService
from puente.warnings.signing import AGGREGATE_CONTEXT, Signature, digest, open_aggregate, sign
from puente.warnings.tables import Key, Table
from puente.warnings.triggers import TriggerSet
from tests.harness import KafkaHarness
from tests.integration.service.support import (
    REPO,
    Deployment,
    NodeGroup,
    deploy,
    publish,
    read_topic,
    running,
)

pytestmark = pytest.mark.kafka

WINDOW_S = 4
STATES = ("GT", "MX", "US")
TRIGGERS = f"""
version: 1
illustrative: true
k: 5
lateness: {2 * WINDOW_S}s
grace: 1
triggers:
  - id: test.detentions
    description: detentions of one nationality in three states, three times their baseline
    purposes: [HUMANITARIAN_ASSISTANCE]
    legal_basis: Los Angeles Declaration (2022), coordinated emergency response
    counts: {{type: ConsularNotification, events: [DETENTION], by: [nationality]}}
    over: [{", ".join(STATES)}]
    window: {WINDOW_S}s
    baseline: {2 * WINDOW_S}s
    threshold: {{ratio: 3, min_count: 30}}
    clear_after: 1
    notify: [ALL]
  - id: test.deaths
    description: deaths in one area
    purposes: [HUMANITARIAN_ASSISTANCE]
    legal_basis: Los Angeles Declaration (2022), coordinated emergency response
    counts: {{type: ConsularNotification, events: [DEATH], by: [place]}}
    over: [{", ".join(STATES)}]
    window: {WINDOW_S}s
    baseline: {2 * WINDOW_S}s
    threshold: {{ratio: 2, min_count: 5}}
    notify: [ALL]
"""


def _policies(tmp: Path) -> Path:
    d = tmp / "policies"
    shutil.copytree(REPO / "policies", d)
    (d / "triggers.yaml").write_text(TRIGGERS, encoding="utf-8")
    return d


def _counting(dep: Deployment, policies: Path, *origins: str) -> NodeGroup:
    """In-process nodes of ``origins``, each counting for early warning as ``puente serve
    node`` does (``Runtime.aggregation``): its node key signs, its own key seals its counts."""
    group = dep.nodes(*origins)
    for node in group.nodes:
        node.aggregation = Aggregation.load(
            node.origin,
            policies,
            dep.settings.schemas_dir,
            keys=node.keys,
            vault=NodeVault(node.trust, node.keys, node.origin),
            registry=dep.registry,
        )
        assert node.aggregation is not None
    return group


def _detentions(
    dep: Deployment, gen: Generator, origin: str, nationality: str, at: dt.datetime, n: int
) -> list[tuple[bytes, bytes]]:
    """``n`` detentions of ``nationality`` by ``origin`` at ``at`` (key, value)."""
    out = []
    for _ in range(n):
        record = gen.consular_notification(origin, "DETENTION", nationalities=[nationality])
        record["event_time"] = record["created_at"] = at
        record["person"]["informed_of_rights_at"] = at
        value = encode(dep.registry, CONSULAR_NOTIFICATION, record)
        out.append((record["notice_id"].encode(), value))
    return out


async def _wait(what: str, ok: Callable[[], bool], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not ok():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.2)


async def _read(dep: Deployment, kind: Any, member: str = "MX") -> list[Any]:
    """Every committed record of a one-partition topic, read as a member (which may)."""
    cred = dep.tenant.member(member)
    c = consumer(dep.tenant.endpoint, cred)
    await start(c, dep.tenant.endpoint, cred)
    try:
        tp = TopicPartition(dep.tenant.topic(kind), 0)
        c.assign([tp])
        await c.seek_to_beginning(tp)
        end = (await c.end_offsets([tp]))[tp]
        out: list[Any] = []
        while await c.position(tp) < end:
            out += (await c.getmany(tp, timeout_ms=500)).get(tp, [])
        return out
    finally:
        await c.stop()


@contextlib.asynccontextmanager
async def _evaluating(dep: Deployment, triggers: TriggerSet) -> AsyncIterator[WarningsService]:
    cred = dep.tenant.service("warnings")
    store = dep.evidence.store
    key = store.current(service_holder("warnings"), usage=Usage.EARLY_WARNING, at=_now())
    reader = TrustTopicReader(dep.tenant.endpoint, cred, dep.tenant.naming, timeout_s=15)
    service = WarningsService(
        endpoint=dep.tenant.endpoint,
        credential=cred,
        naming=dep.tenant.naming,
        registry=dep.registry,
        triggers=triggers,
        key=key,
        trust=TrustTracker(dep.evidence.anchors, dep.registry),
        trust_sources=[reader.newest],
        trust_refresh_s=5,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
        await reader.close()


def _now() -> int:
    return int(time.time() * 1000)


def _window_start(ms: int) -> int:
    return ms - ms % (WINDOW_S * 1000)


async def test_early_warning_end_to_end(kafka: KafkaHarness, tmp_path: Path) -> None:
    dep = await deploy(kafka, partitions=2)
    policies = _policies(tmp_path)
    triggers = load_triggers(policies, dep.settings.schemas_dir)
    gen = Generator(19)

    async with running(_counting(dep, policies, *STATES)), _evaluating(dep, triggers) as ev:
        # The background: small cells (CO in GT, HN in US) and 14 HT detentions in MX.
        now = dt.datetime.now(dt.UTC)
        await publish(dep, "GT", _detentions(dep, gen, "GT", "CO", now, 2))
        await publish(dep, "US", _detentions(dep, gen, "US", "HN", now, 3))
        await publish(dep, "MX", _detentions(dep, gen, "MX", "HT", now, 14))
        # Evaluation starts once two windows of history exist.
        await _wait("a first evaluation", lambda: ev.evaluator.evaluated >= 2)
        assert ev.published == []  # the background alone set nothing off

        # The surge: 15 VE detentions in each state, dated in a window not yet begun.
        surge_window = _window_start(_now()) + 2 * WINDOW_S * 1000
        surge_at = dt.datetime.fromtimestamp(surge_window / 1000 + 1, dt.UTC)
        for state in STATES:
            await publish(dep, state, _detentions(dep, gen, state, "VE", surge_at, 15))
        await publish(dep, "MX", _detentions(dep, gen, "MX", "HT", surge_at, 14))
        await _wait(
            "the warning and its end",
            lambda: [w.status for w in ev.published] == ["STARTED", "ENDED"],
        )

    started, ended = ev.published
    assert started.trigger_id == ended.trigger_id == "test.detentions"  # never test.deaths
    assert started.subject == (("nationality", "VE"),)
    assert started.window_start == surge_window  # the right window: the surge's
    assert started.missing == ()
    assert (
        ended.window_start == surge_window + WINDOW_S * 1000
        and ended.episode_id == started.episode_id
    )

    # Small cells never left the nodes: every published cell is >= k, and each window's cells
    # keep the guarantee; the background's small cells (2 CO in GT, 3 HN in US) are nowhere.
    records = await _read(dep, AGGREGATES)
    verifier_list = dep.verifier().trust_list
    signed = [
        open_aggregate(verifier_list, dep.registry, r.value, r.headers, min_k=triggers.k)
        for r in records
    ]
    groups: dict[tuple[str, int, int], dict[Table, dict[Key, int]]] = defaultdict(dict)
    for r, sa in zip(records, signed, strict=True):
        a = sa.aggregate
        assert a.k == 5 and all(n >= 5 for _, n in a.cells)
        assert (a.shard, a.shards) == (0, 1) and a.origin in STATES  # each node's two summed
        assert r.key == a.origin.encode()  # keyed by origin...
        assert verifier_list.entry(sa.signature.key_id).holder == f"node:{a.origin}"  # ...its node
        groups[(a.origin, a.shard, a.window_start)][a.table] = dict(a.cells)
    assert all(disclosure_problems(cells, 5) == [] for cells in groups.values())
    keys = {key for sa in signed for key, _ in sa.aggregate.cells}
    # The warning's value is what the nodes published for VE in its window: all 45 notices (each
    # node sums its two partitions' counts before suppressing: docs/early-warning.md).
    ve = sum(
        n
        for sa in signed
        if sa.aggregate.window_start == surge_window
        for key, n in sa.aggregate.cells
        if key == ("VE",)
    )
    assert started.value == ve == 45
    assert ("VE",) in keys and ("CO",) not in keys and ("HN",) not in keys
    # Nor did they leave in the nodes' changelogs or partials: sealed to each node there.
    for origin in STATES:
        await _sealed_counts_only(dep, origin)
        await _sealed_partials_only(dep, origin)

    # Anyone recomputes the same bytes from the aggregates topic.
    warnings = await _read(dep, WARNINGS)
    assert [r.value for r in warnings] == [
        w.encode(dep.registry) for w in recompute(triggers, signed)
    ]
    for r in warnings:  # signed by the evaluator
        assert Signature.from_headers(r.headers).key_id == ev.key.key_id

    # What `puente warnings list --as MX --json` prints: both records, verified, none in force.
    from puente.app.commands.warnings import read_warnings
    from puente.app.runtime import Runtime

    doc = await read_warnings(Runtime.from_settings(dep.settings), "MX", [])
    assert doc["contract"] == "puente.warnings.list/v1"
    assert [(w["status"], w["verified"], w["signed_by"]) for w in doc["warnings"]] == [
        ("STARTED", True, "service:warnings"),
        ("ENDED", True, "service:warnings"),
    ]
    assert doc["warnings"][0]["subject"] == {"nationality": "VE"} and doc["active"] == []
    assert all(
        ref["sha256"] in {digest(sa.body) for sa in signed}
        for r in warnings
        for ref in EarlyWarning.decode(dep.registry, r.value).inputs
    )

    await _restart_publishes_nothing_twice(dep, policies, tmp_path)


async def _sealed_counts_only(dep: Deployment, origin: str) -> None:
    """Every aggregation state record in ``origin``'s changelog is an envelope sealed to its
    node; opened with the node's keys it holds the counts (here: the small cells too)."""
    node_keys = dep.nodes(origin).nodes[0].keys
    vault = NodeVault(dep.trust(), node_keys, origin)
    found = [
        (key, value)
        for key, value in await read_topic(dep, dep.tenant.topic(STATE, origin), as_node=origin)
        if key == STATE_KEY
    ]
    assert found
    opened: list[bytes] = []
    for _, value in found:
        assert value[:4] == b"PS\x01\x03"  # magic, version, kind: a node's state
        for shard in (0, 1):
            with contextlib.suppress(Exception):
                opened.append(vault.open(value, name=state_name(shard)))
    assert len(opened) == len(found)  # each opens, as exactly one shard's state
    plaintexts = [json.loads(p) for p in opened]
    small = {"GT": "CO", "US": "HN"}.get(origin)
    if small is not None:  # the sealed state is where the small cell lives
        assert any(small in json.dumps(p) for p in plaintexts)
        # ...and not in clear on the topic: the plaintext around the small cell (at least 18
        # bytes, so a chance match in ciphertext is out of reach, unlike the 2-letter code alone)
        # appears in no record.
        needles = []
        for text in opened:
            at = text.find(small.encode())
            if at >= 0:
                needles.append(text[max(0, at - 8) : at + len(small) + 8])
        assert needles and all(len(n) >= 18 for n in needles)
        assert all(n not in value for n in needles for _, value in found)
    # A take-over reads it back: each partition's last sealed state, which opens as its own.
    cred = dep.tenant.node(origin)
    reader = consumer(dep.tenant.endpoint, cred)
    await start(reader, dep.tenant.endpoint, cred)
    try:
        changelog = Changelog(
            reader, naming=dep.tenant.naming, registry=dep.registry, dedupe_horizon_ms=1 << 40
        )
        states = await changelog.restore([(origin, 0), (origin, 1)])
    finally:
        await reader.stop()
    for (_, partition), state in states.items():
        if state.aggregates is not None:
            json.loads(vault.open(state.aggregates, name=state_name(partition)))
    assert any(state.aggregates is not None for state in states.values())


async def _sealed_partials_only(dep: Deployment, origin: str) -> None:
    """Each partition's closed windows, handed on to ``origin``'s combiner: keyed by shard and
    window only, each an envelope sealed to the node, opening under its own key's name only."""
    vault = NodeVault(dep.trust(), dep.nodes(origin).nodes[0].keys, origin)
    found = [
        ((key or b"").decode(), value)
        for key, value in await read_topic(dep, dep.tenant.topic(PARTIALS, origin), as_node=origin)
    ]
    assert {name.split("/")[1] for name, _ in found} == {"0", "1"}  # both shards
    for name, value in found:
        assert name.startswith("partial/") and value[:4] == b"PS\x01\x03"
        raw = vault.open(value, name=name)
        assert raw not in value and json.loads(raw)["shards"] == 2


async def _restart_publishes_nothing_twice(dep: Deployment, policies: Path, tmp: Path) -> None:
    """`puente serve warnings` (a process) replays every aggregate, derives the same warnings and
    publishes none again; `puente warnings list --json` prints them once."""
    env = dep.env(PUENTE_POLICIES_DIR=str(policies), PUENTE_WARNINGS__METRICS_PORT="0")
    log = tmp / "serve-warnings.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "puente",
            "serve",
            "warnings",
            env=env,
            cwd=REPO,
            stdout=out,
            stderr=out,
        )
        try:
            await _wait(
                "the evaluator process to catch up",
                lambda: b"warnings.caught_up" in log.read_bytes(),
            )
        finally:
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 60) == 0, log.read_text()
    assert b"warnings.published" not in log.read_bytes()
    assert len(await _read(dep, WARNINGS)) == 2
    listed = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "puente", "warnings", "list", "--json"),
        *("--as", "US", "--trigger", "test.detentions"),
        env=env,
        cwd=REPO,
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(listed.communicate(), 120)
    assert listed.returncode == 0
    doc = json.loads(stdout)
    assert [w["status"] for w in doc["warnings"]] == ["STARTED", "ENDED"]
    assert all(w["verified"] for w in doc["warnings"])


async def test_a_forged_aggregate_is_refused(kafka: KafkaHarness, tmp_path: Path) -> None:
    """Every node may write the aggregates topic; only the origin's node key makes an aggregate
    count. GT's node cannot publish MX's counts, alter them, or publish them unsigned; a member
    principal cannot write the topic at all."""
    dep = await deploy(kafka, partitions=1)
    policies = _policies(tmp_path)
    triggers = load_triggers(policies, dep.settings.schemas_dir)
    async with running(_counting(dep, policies, "MX")), _evaluating(dep, triggers) as ev:
        await _wait("a first aggregate", lambda: ev.read >= 1)
        real = (await _read(dep, AGGREGATES))[0]
        genuine = Aggregate.decode(dep.registry, real.value)
        assert genuine.origin == "MX"
        forged = dataclasses.replace(genuine, cells=((("VE",), 999),)).encode(dep.registry)
        gt_key = dep.evidence.node_key("GT")
        as_gt = sign(gt_key, AGGREGATE_CONTEXT, forged, signed_at=genuine.window_end + 1)
        cred = dep.tenant.node("GT")  # another state's node: it may write the topic
        p = producer(dep.tenant.endpoint, cred)
        await start(p, dep.tenant.endpoint, cred)
        try:
            topic = dep.tenant.topic(AGGREGATES)
            await p.send_and_wait(topic, forged, key=b"MX", headers=list(real.headers), partition=0)
            await p.send_and_wait(topic, forged, key=b"MX", headers=as_gt.headers(), partition=0)
            await p.send_and_wait(topic, forged, key=b"MX", partition=0)  # no signature at all
        finally:
            await p.stop()
        await _wait(
            "the three refusals",
            lambda: (
                ev.refused["SIGNATURE_INVALID"] == 1
                and ev.refused["KEY_WRONG_HOLDER"] == 1
                and ev.refused["SIGNATURE_MISSING"] == 1
            ),
        )
        member = dep.tenant.member("MX")  # an agency's principal: no write on aggregates
        p = producer(dep.tenant.endpoint, member)
        await start(p, dep.tenant.endpoint, member)
        try:
            with pytest.raises(KafkaError):
                await p.send_and_wait(dep.tenant.topic(AGGREGATES), forged, partition=0)
        finally:
            await p.stop()
    forged_digest = digest(forged)
    assert not any(r["sha256"] == forged_digest for w in ev.published for r in w.inputs)
