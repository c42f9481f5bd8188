"""``puente demo``: the whole mission on the embedded default, for a newcomer to watch.

1. a real Kafka broker (KRaft, SASL/SCRAM, ACLs) from Maven Central jars;
2. the 20 member states provisioned, each its own principal with least-privilege ACLs;
3. keys and a signed trust list; a node and a witness per state started;
4. agencies of several states publish notices — named cases that show the protection floor and
   the consular rules at work, then a mix of synthetic notices, a spoofed one and a re-sent one;
5. every partner state receives, verifies and acknowledges what it may see;
6. the other states' witnesses cosign every log's checkpoints: deliveries become final
   (``witnessed``) once a quorum of them has, and no witness proved a fork;
7. every consular notification has a clock: a consular officer acknowledges one in time, another
   goes overdue and is escalated (each state's receipt tracker, its clock sped up);
8. what was withheld and why, as the origins are told;
9. the auditor replays the signed log from Kafka and gives its verdict.

Every run adds new notices; the broker keeps running between runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from puente.app.operator import ensure_evidence, provision_members, publish_trust_list
from puente.app.runtime import Runtime
from puente.config import get_settings
from puente.evidence._time import now_ms

console = Console(width=None if sys.stdout.isatty() else 120)


@dataclass(frozen=True)
class Story:
    """A named case, and what a newcomer should look for in its outcome."""

    scenario: str
    origin: str
    kwargs: dict[str, Any]
    focus: tuple[str, ...]  # recipients always shown, whatever happened to them
    text: str


STORIES = [
    Story(
        "asylum-seeker-detention",
        "US",
        {"nationality": "JM"},
        ("JM",),
        "US detains a Jamaican asylum seeker. JM is on the US mandatory-notification list, yet "
        "the protection floor withholds the notification from JM; the US is told, so that its "
        "officers act by hand.",
    ),
    Story(
        "dual-national-arrest",
        "US",
        {"nationalities": ("GT", "HN")},
        ("GT", "HN"),
        "A dual national asks for consular notification: both GT and HN are notified.",
    ),
    Story(
        "dual-national-fear-of-one",
        "MX",
        {"nationalities": ("HN", "CR"), "feared": ("HN",)},
        ("HN", "CR"),
        "A dual national detained in Mexico seeks asylum from Honduras only and asks for "
        "consular help: Honduras learns nothing, Costa Rica is notified (no onward transfer).",
    ),
    Story(
        "death",
        "MX",
        {"nationality": "GT"},
        ("GT",),
        "A Guatemalan dies in Mexico: GT is always informed (VCCR Art. 37).",
    ),
    Story(
        "unaccompanied-minor-return",
        "MX",
        {"nationality": "HN"},
        ("HN",),
        "A child is returned to Honduras: HN receives it, for child protection only.",
    ),
    Story(
        "smuggling-with-asylum-seeker",
        "PA",
        {"migrant_nationality": "CO"},
        ("CO",),
        "Panama shares a smuggling case with its partners; one smuggled migrant, a Colombian, "
        "has sought asylum: nothing identifying that person reaches Colombia.",
    ),
    Story(
        "trafficking-victims",
        "MX",
        {"victim_nationality": "GT"},
        ("GT",),
        "A trafficking case: the victims are removed from what goes out for enforcement.",
    ),
    Story(
        "plain-smuggling-case",
        "GT",
        {"suspect_nationality": "MX"},
        ("MX",),
        "An ordinary smuggling case, shared as each origin's rules allow.",
    ),
]


@dataclass
class Published:
    origin: str
    notice_id: str
    label: str


DEMO_CLOCK_SCALE = 14_400.0
"""The receipt trackers' clock in the demo: four hours a second, so that a 72-hour deadline
passes in under 20 seconds."""


def demo(
    notices: int = typer.Option(200, help="synthetic notices to publish besides the named cases"),
    seed: int | None = typer.Option(None, help="synthetic-data seed (default: the clock)"),
    clock_scale: float = typer.Option(
        DEMO_CLOCK_SCALE,
        min=1.0,
        help="how many times faster than real time the receipt trackers' clock runs (deadlines "
        "are hours; PUENTE_RECEIPTS__CLOCK_SCALE does the same for puente serve receipts)",
    ),
) -> None:
    """Run the exchange end to end on a local Kafka broker and show what happened."""
    from puente.app.commands.kafka import print_plan, up

    settings = get_settings()
    # Coordinator hand-overs are routine and retried; the services log what matters.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    console.rule("[bold]1. A real Apache Kafka broker (KRaft, SASL/SCRAM, ACLs)")
    if settings.kafka.bootstrap:
        console.print(f"using the configured cluster at {settings.kafka.bootstrap}")
    else:
        up(brokers=None)
    console.rule("[bold]2. Member states: principals, topics, least-privilege ACLs")
    plan, changes = provision_members(settings, dry_run=False)
    print_plan(plan, changes)
    console.print(
        f"{len(plan.principals)} principals, {len(plan.topics)} topics, {len(plan.acls)} ACLs"
    )
    rt = Runtime.from_settings(settings)
    ok = asyncio.run(
        _exchange(rt, notices, seed if seed is not None else int(time.time()), clock_scale)
    )
    console.print(
        "The broker keeps running; stop it with `.venv/bin/puente kafka down`.", style="dim"
    )
    if not ok:
        raise typer.Exit(1)


async def _exchange(rt: Runtime, extra: int, seed: int, clock_scale: float) -> bool:
    settings, naming, members = rt.settings, rt.naming, rt.members

    console.rule("[bold]3. Keys, the signed trust list, a node and a witness per state")
    evidence = ensure_evidence(settings, members)
    operator = rt.service_credential("operator")
    await publish_trust_list(rt.endpoint, operator, naming, evidence.trust_list)
    trust = evidence.open_trust_list()
    floor = trust.floor_digest.hex() if trust.floor_digest else "-"
    console.print(
        f"trust list serial {trust.serial}: {len(trust.entries)} signing and "
        f"{len(trust.encryption_entries)} encryption keys, pinned floor {floor[:16]}…, expires "
        f"{dt.datetime.fromtimestamp(trust.expires_at / 1000, dt.UTC):%Y-%m-%d}"
    )
    stop = asyncio.Event()
    t0 = time.monotonic()
    async with contextlib.AsyncExitStack() as stack:
        nodes, witnesses = [], []
        for code in members:
            node, reader = rt.node(code, instance="demo")
            await stack.enter_async_context(reader)
            nodes.append(node)
            witness, reader = rt.witness(code, instance="demo")
            await stack.enter_async_context(reader)
            witnesses.append(witness)
        finality = _Finality(rt, members[0], evidence.open_trust_list(), since_ms=now_ms())
        tasks = [asyncio.create_task(n.run(stop)) for n in nodes]
        tasks += [asyncio.create_task(w.run(stop)) for w in witnesses]
        tasks.append(asyncio.create_task(finality.follow(stop)))
        try:
            ready = [n.ready.wait() for n in nodes] + [w.ready.wait() for w in witnesses]
            await asyncio.wait_for(asyncio.gather(*ready), 300)
            console.print(
                f"{len(nodes)} nodes and {len(witnesses)} witnesses running in this process "
                f"(each its state's principals, keys and consumer groups), all processing "
                f"{time.monotonic() - t0:.1f} s after start; policy set "
                f"{nodes[0].policies.current.version[:19]}…"
            )
            bad = await _exchange_with_nodes(
                rt, evidence, members, extra, seed, clock_scale, finality
            )
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 120)

    console.rule("[bold]9. The auditor replays the signed log")
    verdict = _audit(rt, evidence.anchors)
    return verdict and bad == 0


async def _exchange_with_nodes(
    rt: Runtime,
    evidence: Any,
    members: tuple[str, ...],
    extra: int,
    seed: int,
    clock_scale: float,
    finality: _Finality,
) -> int:
    """Steps 4 to 8, while the nodes and witnesses run; the number of deliveries that did not
    verify, plus the equivocations proven."""
    from puente.evidence.trustsource import TrustTracker

    tracker = TrustTracker.with_list(evidence.trust_list, evidence.anchors, rt.registry)
    console.rule("[bold]4. Agencies publish notices, sealed to their own state's node")
    published = await _publish(rt, members, extra, seed, tracker)
    expected = await _wait_processed(rt, published)

    console.rule("[bold]5. Partner states receive, verify, open and acknowledge")
    received = await _receive(rt, members, tracker, evidence, published, finality.book)
    _show_stories(published, expected, received)
    _show_partners(members, received)
    bad = sum(1 for rows in received.values() for r in rows if not r["verified"])

    console.rule("[bold]6. The other states' witnesses cosign every log: deliveries become final")
    bad += await _witnessed(rt, finality, received)

    console.rule("[bold]7. Every consular notification has a clock")
    await _deadlines(rt, evidence, members, published, received, clock_scale)

    console.rule("[bold]8. What was withheld and why")
    await _show_withheld(rt, published, expected)
    return bad


async def _publish(
    rt: Runtime,
    members: tuple[str, ...],
    extra: int,
    seed: int,
    trust: Any,
) -> list[Published]:
    naming, registry = rt.naming, rt.registry
    from puente.codec.wire import encode
    from puente.evidence._time import now_ms
    from puente.kafka.clients import producer, start
    from puente.publisher.core import seal_for_node
    from puente.synth.generator import Generator
    from puente.synth.notice import Notice
    from puente.topics import INGRESS

    gen = Generator(seed, members=members)
    now = dt.datetime.now(dt.UTC)
    batches: dict[str, list[tuple[Published, bytes]]] = defaultdict(list)

    def add(notice: Notice, label: str, origin: str | None = None) -> Published:
        record = dict(notice.record)
        record["created_at"] = now - dt.timedelta(minutes=2)
        if "event_time" in record:
            moved = now - dt.timedelta(minutes=30) - record["event_time"]
            record["event_time"] += moved
            details = record.get("return_details")
            if details:  # a return leaves as long after the event as the generator said
                legs = [
                    leg | {"departure_at": leg["departure_at"] + moved}
                    for leg in details["itinerary"]
                ]
                record["return_details"] = details | {"itinerary": legs}
        topic_state = origin or record["origin"]
        item = Published(topic_state, record["notice_id"], label)
        plain = encode(registry, notice.name, record)
        # Sealed by the publishing state's agency to its own node (the spoofed one too: GT's
        # node opens it and sees a notice claiming MX as its origin).
        sealed = seal_for_node(trust.verifier().trust_list, topic_state, plain, at=now_ms())
        batches[topic_state].append((item, sealed))
        return item

    for story in STORIES:
        add(gen.scenario(story.scenario, origin=story.origin, **story.kwargs), story.scenario)
    synthetic = [add(notice, "synthetic") for notice in gen.notices(max(extra, 1))]
    # Guatemala publishes a notice that claims to come from Mexico: refused (ORIGIN_MISMATCH).
    spoof = gen.case_notice(origin="MX")
    add(Notice("puente.CaseNotice", spoof), "spoofed origin", origin="GT")
    # An agency sends one of its notices twice: the copy is refused (DUPLICATE_NOTICE).
    again = synthetic[0]
    value = next(v for item, v in batches[again.origin] if item is again)
    batches[again.origin].append((Published(again.origin, again.notice_id, "re-sent"), value))

    endpoint = rt.endpoint
    out: list[Published] = []
    table = Table("origin", "notices", title="Published (each state as its own principal)")
    for origin, items in sorted(batches.items()):
        cred = rt.member_credential(origin)
        p = producer(endpoint, cred)
        await start(p, endpoint, cred)
        try:
            futures = [
                await p.send(naming.topic(INGRESS, origin), value, key=item.notice_id.encode())
                for item, value in items
            ]
            await asyncio.gather(*futures)
        finally:
            await p.stop()
        out += [item for item, _ in items]
        table.add_row(origin, str(len(items)))
    console.print(table)
    return out


async def _wait_processed(
    rt: Runtime, published: list[Published]
) -> dict[tuple[str, str], list[Any]]:
    """Read the audit records of this run's notices (as the auditor) until every input has one."""
    naming, registry = rt.naming, rt.registry
    from puente.evidence.records import AuditRecord
    from puente.kafka.auditsource import KafkaAuditSource
    from puente.topics import AUDIT

    wanted = {(p.origin, p.notice_id) for p in published}
    inputs = len(published)
    source = KafkaAuditSource(
        rt.endpoint,
        rt.service_credential("auditor"),
        naming,
    )
    deadline = time.monotonic() + 180
    with console.status("the policy service decides, transforms, signs and delivers…"):
        while True:
            by_notice: dict[tuple[str, str], list[AuditRecord]] = defaultdict(list)
            positions = set()
            for batch in await asyncio.to_thread(lambda: list(source.batches(AUDIT))):
                for value in batch.values:
                    rec = AuditRecord.decode(registry, value or b"")
                    if (rec.origin, rec.notice_id) in wanted:
                        by_notice[(rec.origin, str(rec.notice_id))].append(rec)
                        positions.add(
                            (rec.ingress_topic, rec.ingress_partition, rec.ingress_offset)
                        )
            if len(positions) >= inputs or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
    records = sum(len(v) for v in by_notice.values())
    console.print(f"{len(positions)} of {inputs} inputs processed: {records} audit records")
    return by_notice


async def _receive(
    rt: Runtime,
    members: tuple[str, ...],
    trust: Any,
    evidence: Any,
    published: list[Published],
    finality: Any,
) -> dict[str, list[dict[str, Any]]]:
    """Every partner reads, verifies, opens and acknowledges its deliveries, and says of each
    whether it was final when read. The twenty partners hosted here count the witnesses'
    cosignatures into one book (``finality``, the one step 6 reads too): each cosigned note is
    verified once in the process, not once per partner."""
    naming, registry = rt.naming, rt.registry
    from puente.evidence.trust import Usage, member_holder
    from puente.subscriber.core import Subscriber
    from puente.subscriber.jsonlines import to_json

    ours = {p.notice_id for p in published}
    endpoint = rt.endpoint
    now = int(time.time() * 1000)

    async def one(member: str) -> tuple[str, list[dict[str, Any]]]:
        sub = Subscriber(
            endpoint=endpoint,
            credential=rt.member_credential(member),
            naming=naming,
            member=member,
            registry=registry,
            trust=trust,
            receipt_key=evidence.store.current(member_holder(member), usage=Usage.RECEIPT, at=now),
            keys=evidence.store.keyring(member_holder(member)),
            name="demo",
            finality=finality,
            finality_lookback_s=rt.settings.witness.finality_lookback_s,
        )
        rows = []
        async with sub:
            async for r in sub.stream(idle_timeout_s=3):
                row = to_json(r, registry)
                if not r.ok or row.get("notice_id") in ours:
                    rows.append(row)
        return member, rows

    with console.status("20 partner states read their deliveries…"):
        results = await asyncio.gather(*(one(m) for m in members))
    return dict(results)


class _Finality:
    """What a member reads of the witnesses while the demo runs (as its own principal): every
    cosignature, counted into a :class:`FinalityBook`, and how long each checkpoint signed in
    this run took to reach the quorum (from its node's signature time to the cosignature that
    completed the quorum, as this member read it)."""

    def __init__(self, rt: Runtime, member: str, trust_list: Any, *, since_ms: int) -> None:
        from puente.evidence.finality import FinalityBook
        from puente.evidence.verify import Verifier

        self.rt, self.member, self.since_ms = rt, member, since_ms
        self.book = FinalityBook(rt.quorum())
        self.verifier = Verifier(trust_list=trust_list, registry=rt.registry)
        self.to_quorum_s: dict[tuple[str, int], float] = {}
        self.refused = 0
        self.changed = asyncio.Event()  # set when cosignatures were counted

    async def follow(self, stop: asyncio.Event) -> None:
        from puente.evidence.checkpoint import parse_signed_checkpoint
        from puente.evidence.errors import EvidenceError
        from puente.kafka.clients import consumer, start
        from puente.kafka.reading import seek_back, topic_partitions
        from puente.topics import COSIGNATURES

        cred = self.rt.member_credential(self.member)
        c = consumer(self.rt.endpoint, cred)
        await start(c, self.rt.endpoint, cred)
        try:
            tps = await topic_partitions(c, [self.rt.naming.topic(COSIGNATURES)])
            await seek_back(c, tps, self.rt.settings.witness.finality_lookback_s)
            while not stop.is_set():
                got = await c.getmany(timeout_ms=500)
                now = now_ms()
                for messages in got.values():
                    for m in messages:
                        try:
                            self.book.add(m.value or b"", self.verifier)
                            cp = parse_signed_checkpoint(m.value or b"")[0]
                        except (EvidenceError, ValueError):
                            self.refused += 1
                            continue
                        log = self.book.logs[cp.log_origin]
                        signed = log.signed_at.get(cp.size, 0)
                        key = (cp.log_origin, cp.size)
                        if (
                            key not in self.to_quorum_s
                            and signed >= self.since_ms
                            and len(log.cosigners.get(cp.size, {})) >= self.book.quorum
                        ):
                            self.to_quorum_s[key] = (now - signed) / 1000
                if got:
                    self.changed.set()
        finally:
            await c.stop()

    def witnessed(self, row: dict[str, Any]) -> bool:
        """Whether a received delivery's record is covered by a final checkpoint now."""
        from puente.evidence.finality import Finality

        audit = row["audit"]
        found = self.book.finality(audit["log_id"], audit["leaf_index"])
        return found is Finality.WITNESSED


async def _witnessed(
    rt: Runtime, finality: _Finality, received: dict[str, list[dict[str, Any]]]
) -> int:
    """Step 6: wait until every delivery of this run is covered by a checkpoint a quorum of
    other states' witnesses cosigned; show how each was when its partner read it, how long
    checkpoints took to reach the quorum, and the equivocation reports (none): their number."""
    import statistics

    from puente.evidence.equivocation import verify_report
    from puente.evidence.errors import EvidenceError
    from puente.kafka.clients import consumer, start
    from puente.kafka.reading import read_all, topic_partitions
    from puente.topics import EQUIVOCATIONS

    rows = [r for rs in received.values() for r in rs if r["verified"]]
    t0 = time.monotonic()
    with console.status(
        f"the witnesses cosign each log's checkpoints; waiting for a quorum of "
        f"{finality.book.quorum}…"
    ):
        while not all(finality.witnessed(r) for r in rows):
            finality.changed.clear()
            try:
                await asyncio.wait_for(finality.changed.wait(), t0 + 90 - time.monotonic())
            except TimeoutError:
                break
    waited = time.monotonic() - t0
    cred = rt.member_credential(finality.member)
    c = consumer(rt.endpoint, cred)
    await start(c, rt.endpoint, cred)
    try:
        tps = await topic_partitions(c, [rt.naming.topic(EQUIVOCATIONS)])
        reports = []
        for data in await read_all(c, tps):
            try:
                reports.append(verify_report(data, finality.verifier))
            except (EvidenceError, ValueError):
                continue
    finally:
        await c.stop()

    table = Table(
        "origin",
        "deliveries",
        "witnessed when read",
        "witnessed now",
        "checkpoints",
        "to quorum p50",
        "max",
        title=f"Finality of this run's deliveries (quorum: {finality.book.quorum} other states' "
        "witnesses)",
    )
    by_origin: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_origin[r["origin"]].append(r)
    times: dict[str, list[float]] = defaultdict(list)
    for (log_id, _), seconds in finality.to_quorum_s.items():
        times[log_id.split("/")[1]].append(seconds)
    for origin in sorted(by_origin):
        got, spent = by_origin[origin], times.get(origin, [])
        table.add_row(
            origin,
            str(len(got)),
            str(sum(1 for r in got if r.get("finality") == "witnessed")),
            str(sum(1 for r in got if finality.witnessed(r))),
            str(len(spent)),
            f"{statistics.median(spent):.2f} s" if spent else "-",
            f"{max(spent):.2f} s" if spent else "-",
        )
    console.print(table)
    at_read = sum(1 for r in rows if r.get("finality") == "witnessed")
    now = sum(1 for r in rows if finality.witnessed(r))
    console.print(
        f"{len(rows)} verified deliveries of this run: {at_read} witnessed when their partner "
        f"read them, {len(rows) - at_read} signed only; {now} witnessed {waited:.1f} s later, "
        f"{len(rows) - now} signed only."
    )
    spent = sorted(finality.to_quorum_s.values())
    if spent:
        p99 = statistics.quantiles(spent, n=100, method="inclusive")[98] if len(spent) > 1 else 0
        console.print(
            f"checkpoint → quorum: p50 {statistics.median(spent):.2f} s, p99 {p99:.2f} s, max "
            f"{spent[-1]:.2f} s over {len(spent)} checkpoints of this run (from the node's "
            f"signature to the cosignature completing the quorum, as {finality.member} read it)"
        )
    console.print(f"equivocation reports: {len(reports)}")
    console.print(
        "Each state's witness cosigned (C2SP cosignature/v1) every other state's checkpoint "
        "that extends what it cosigned before; a partner holds a delivery as final once its "
        "checkpoint carries a quorum of those cosignatures. A delivery read before its "
        "checkpoint was cosigned is signed only (its node's signature) until then.",
        style="dim",
    )
    return len(reports) + (len(rows) - now)


def _show_stories(
    published: list[Published],
    expected: dict[tuple[str, str], list[Any]],
    received: dict[str, list[dict[str, Any]]],
) -> None:
    got = {
        (row["notice_id"], member): row
        for member, rows in received.items()
        for row in rows
        if row["verified"]
    }
    for story in STORIES:
        item = next(p for p in published if p.label == story.scenario)
        table = Table(
            "recipient", "outcome", "rules / reasons", title=f"{story.scenario} ({story.origin})"
        )
        records = expected.get((item.origin, item.notice_id), [])
        for rec in sorted(records, key=lambda r: r.recipient or ""):
            floor = (rec.reason_code or "").startswith("FLOOR")
            if rec.decision == "WITHHELD" and not floor and rec.recipient not in story.focus:
                continue  # the many ordinary "no rule shares this" withholds are counted below
            row = got.get((item.notice_id, rec.recipient))
            verified = " ✓ verified" if row else ""
            why = rec.reason_code if rec.decision == "WITHHELD" else ", ".join(rec.rule_ids[:3])
            table.add_row(rec.recipient or "-", f"{rec.decision}{verified}", why or "")
        console.print(f"[bold]{story.text}")
        console.print(table)


def _show_partners(members: tuple[str, ...], received: dict[str, list[dict[str, Any]]]) -> None:
    table = Table(
        "partner",
        "deliveries",
        "verified",
        "transformed",
        "from",
        title="What each partner received",
    )
    for m in members:
        rows = received.get(m, [])
        ok = [r for r in rows if r["verified"]]
        table.add_row(
            m,
            str(len(rows)),
            f"{len(ok)}" + ("" if len(ok) == len(rows) else " [red]!"),
            str(sum(1 for r in ok if r["action"] == "TRANSFORMED")),
            ", ".join(f"{o}×{n}" for o, n in Counter(r["origin"] for r in ok).most_common(4)),
        )
    console.print(table)
    console.print(
        "Each delivery was verified against the signed trust list (batch signature + inclusion "
        "proof) and acknowledged with a signed DeliveryReceipt on the partner's receipts topic.",
        style="dim",
    )


async def _deadlines(
    rt: Runtime,
    evidence: Any,
    members: tuple[str, ...],
    published: list[Published],
    received: dict[str, list[dict[str, Any]]],
    clock_scale: float,
) -> None:
    """Step 6: GT's consular officer acknowledges the death notification at once; nobody
    answers the arrest notified to HN. Every state's receipt tracker runs, its clock
    ``clock_scale`` times faster than real time, until the arrest's 72-hour deadline has passed
    and US's tracker has escalated it: a signed report to the US, a reminder to HN."""
    from puente.evidence._time import format_ms, now_ms
    from puente.evidence.trust import Usage, member_holder
    from puente.receipts.answer import acknowledgment, send_receipt
    from puente.receipts.clock import ScaledClock
    from puente.receipts.report import report
    from puente.receipts.track import TrackState

    def row(story: str, recipient: str) -> dict[str, Any] | None:
        item = next(p for p in published if p.label == story)
        return next(
            (r for r in received.get(recipient, []) if r.get("notice_id") == item.notice_id),
            None,
        )

    answered, ignored = row("death", "GT"), row("dual-national-arrest", "HN")
    if answered is None or ignored is None:
        console.print("[red]the death (GT) or the arrest (HN) notification was not received")
        return
    now = now_ms()
    officer = acknowledgment(
        recipient="GT",
        notice_id=answered["notice_id"],
        delivery_digest=bytes.fromhex(answered["digest"]),
        log_id=answered["audit"]["log_id"],
        log_index=answered["audit"]["leaf_index"],
        now=now,
        case_reference="GT-CONS-2026/0412",
    )
    await send_receipt(
        endpoint=rt.endpoint,
        credential=rt.member_credential("GT"),
        naming=rt.naming,
        registry=rt.registry,
        key=evidence.store.current(member_holder("GT"), usage=Usage.RECEIPT, at=now),
        receipt=officer,
    )
    console.print(
        "A Guatemalan consular officer takes the case of the death in Mexico (ACKNOWLEDGED, "
        f"case {officer.acknowledgment.case_reference if officer.acknowledgment else '-'}), "
        "signed with GT's receipt key. Nobody answers the arrest notified to Honduras."
    )
    watched = {
        "MX": bytes.fromhex(answered["digest"]),
        "US": bytes.fromhex(ignored["digest"]),
    }
    stop = asyncio.Event()
    async with contextlib.AsyncExitStack() as stack:
        trackers = {}
        for code in members:
            t, reader = rt.tracker(code, instance="demo", clock_=ScaledClock(clock_scale))
            await stack.enter_async_context(reader)
            trackers[code] = t
        tasks = [asyncio.create_task(t.run(stop)) for t in trackers.values()]

        def state(origin: str) -> TrackState | None:
            track = trackers[origin].book.tracks.get(watched[origin])
            return None if track is None else track.state

        escalations: list[Any] = []
        try:
            with console.status(
                f"20 receipt trackers, their clock {clock_scale:g} times real time, wait for "
                "the deadlines…"
            ):
                deadline = time.monotonic() + 180
                while time.monotonic() < deadline:
                    if state("MX") is TrackState.ACKNOWLEDGED and state("US") is TrackState.OVERDUE:
                        escalations = await _reports(rt, evidence, "US", ignored["delivery_id"])
                        if escalations:
                            break
                    await asyncio.sleep(0.5)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*tasks), 120)
        books = {code: list(t.book) for code, t in trackers.items()}
    mine = {p.notice_id for p in published}
    tracks = [tr for book in books.values() for tr in book if tr.notice_id in mine]
    table = Table(
        "notification",
        "pair",
        "acknowledge by",
        "state",
        "answered / escalated",
        title="Two consular notifications and their clocks",
    )
    for label, origin, digest in (
        ("death", "MX", watched["MX"]),
        ("dual-national-arrest", "US", watched["US"]),
    ):
        tr = next((t for t in books[origin] if t.delivery_digest == digest), None)
        if tr is None:
            continue
        when = tr.answered_at if tr.answered_at is not None else tr.escalated_at
        table.add_row(
            f"{label} ({tr.type})",
            f"{tr.origin}→{tr.recipient}",
            format_ms(tr.acknowledge_by),
            tr.state.value + (f" (missed {tr.missed.value})" if tr.missed else ""),
            format_ms(when) + (" [tracker's clock]" if tr.escalated_at is not None else ""),
        )
    console.print(table)
    for r in escalations:
        console.print(
            f"[bold]{r.kind.value}[/] to {r.addressee}, signed by {r.origin}'s node key "
            f"(verified): delivery {r.delivery_id} to {r.recipient} missed its "
            f"{r.missed.value} deadline {format_ms(r.deadline)} — {'; '.join(r.legal_bases)}"
        )
    summary = Table(
        "origin",
        "recipient",
        "deliveries",
        "received",
        "acknowledged",
        "overdue",
        title="Receipts of this run's consular notifications, per pair (puente receipts status)",
    )
    for r in report([t for t in tracks if t.type.startswith("ConsularNotification")], "all"):
        summary.add_row(
            r["origin"],
            r["recipient"],
            str(r["deliveries"]),
            str(r["received"]),
            str(r["acknowledged"]),
            str(r["overdue"]),
        )
    console.print(summary)
    console.print(
        "Every partner's software signed a machine receipt in step 5; only GT's officer "
        "answered, so every other consular notification of this run went overdue on the sped-up "
        "clock and was escalated once: a signed report to its origin, a reminder to its "
        "recipient (overdue.<STATE>). Ids, types, states and times only.",
        style="dim",
    )


async def _reports(rt: Runtime, evidence: Any, state: str, delivery_id: str) -> list[Any]:
    """The verified overdue reports about ``delivery_id`` on ``state``'s overdue topic and on its
    recipient's, read as each state's own principal."""
    from puente.evidence.verify import Verifier
    from puente.kafka.clients import consumer, start
    from puente.kafka.reading import read_to_end, topic_partitions
    from puente.topics import OVERDUE

    verifier = Verifier(trust_list=evidence.open_trust_list(), registry=rt.registry)
    found = []
    for who in (state, "HN"):
        cred = rt.member_credential(who)
        c = consumer(rt.endpoint, cred)
        await start(c, rt.endpoint, cred)
        try:
            tps = await topic_partitions(c, [rt.naming.topic(OVERDUE, who)])
            records = await read_to_end(c, tps)
        finally:
            await c.stop()
        for _, value, _ in records.values():
            report = verifier.verify_overdue_report(value or b"")
            if report.delivery_id == delivery_id:
                found.append(report)
    return found


async def _show_withheld(
    rt: Runtime,
    published: list[Published],
    expected: dict[tuple[str, str], list[Any]],
) -> None:
    naming, registry = rt.naming, rt.registry
    from puente.codec.wire import decode
    from puente.kafka.clients import consumer, start
    from puente.topics import REJECTED

    reasons: dict[str, Counter[str]] = defaultdict(Counter)
    for records in expected.values():
        for rec in records:
            reasons[rec.decision][(rec.reason_code or "").split(",")[0]] += 1
    table = Table("decision / reason", "count", title="Decisions of this run (from the audit log)")
    for decision, counts in sorted(reasons.items()):
        table.add_row(f"[bold]{decision}", f"[bold]{sum(counts.values())}")
        if decision in ("WITHHELD", "REJECTED"):
            for reason, n in counts.most_common():
                table.add_row(f"  {reason}", str(n))
    console.print(table)

    endpoint = rt.endpoint
    ours = {p.notice_id for p in published}
    told = Table(
        "origin", "scope", "recipient", "reason", "message", title="What the origins were told"
    )
    for origin in sorted({p.origin for p in published}):
        cred = rt.member_credential(origin)
        c = consumer(
            endpoint,
            cred,
            naming.topic(REJECTED, origin),
            group_id=naming.member_group_prefix(origin) + "demo",
        )
        await start(c, endpoint, cred)
        try:
            got = await c.getmany(timeout_ms=2000)
            await c.commit()
        finally:
            await c.stop()
        for messages in got.values():
            for m in messages:
                r = decode(registry, m.value or b"")
                if r["notice_id"] in ours or r["notice_id"] is None:
                    warning = r.get("severity") == "WARNING"
                    told.add_row(
                        origin,
                        r["scope"] + (" (warning)" if warning else ""),
                        r["recipient"] or "-",
                        r["reason_code"],
                        r["message"][:90],
                    )
    console.print(told)


def _audit(rt: Runtime, anchors: Any) -> bool:
    settings, naming, registry = rt.settings, rt.naming, rt.registry
    from puente.evidence.audit.auditor import AuditOptions, Auditor
    from puente.kafka.auditsource import KafkaAuditSource

    source = KafkaAuditSource(
        rt.endpoint,
        rt.service_credential("auditor"),
        naming,
    )
    auditor = Auditor(registry=registry, anchors=anchors, options=AuditOptions(naming=naming))
    with console.status(
        "verifying every checkpoint signature, root, consistency proof and record…"
    ):
        report = auditor.run(source)
    reports = settings.state_dir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "audit.json").write_bytes(report.to_json())
    (reports / "audit.txt").write_text(report.to_text())
    text = report.to_text()
    # The summary; the per-log detail is in the report files.
    console.print(text.split("\nlogs:")[0].rstrip())
    console.print(f"reports: {reports / 'audit.txt'}, {reports / 'audit.json'}", style="dim")
    return report.ok


def register(app: typer.Typer) -> None:
    app.command(name="demo")(demo)
