"""Receipt tracker benchmark: throughput, memory per million open deliveries, escalation delay.

    .venv/bin/python -m tests.bench.receipts [--receipts 20000] [--open 1000000]
                                             [--escalations 200] [--runs 3]

1. **Judging, pure** (no I/O): :meth:`TrackBook.judge` of ``--receipts`` signed machine receipts
   (decode, the receipt rules, the Ed25519 signature against the trust list, the state change),
   against the baseline of the Ed25519 verification alone of the same receipts.
2. **The tracker on the real broker**: MX's :class:`ReceiptTracker` starts on ``--receipts``
   deliveries already in ``audit.MX`` and as many signed receipts spread over three recipients'
   receipts topics, and runs until it has judged all and committed (its ``ready``: caught up);
   receipts per second of that, against the baseline of a plain read_committed consumer
   reading the same records to their end (no judging, no transactions).
3. **Memory per million open deliveries**: the growth of this process's resident memory while a
   :class:`TrackBook` takes ``--open`` open deliveries (each with its own ids and digest, the
   repeated values shared as after a restore), per million; baseline: a dict of as many
   32-byte digests, the least any index of deliveries by digest holds.
4. **Escalation delay**: ``--escalations`` deliveries whose receive deadline passes a few seconds
   after the tracker starts, on the real clock; for each, from its deadline to the moment its
   signed report is readable (read_committed) on ``overdue.MX``. The floor is the tracker's poll
   interval (``poll_s``, 0.2 s).

Medians of ``--runs`` for 1 and 2. Prints the machine's load average before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import hashlib
import os
import statistics
import time
import uuid
from collections.abc import Callable

from puente.codec.registry import Registry
from puente.config import Settings
from puente.evidence._time import now_ms
from puente.evidence.keys import SigningKey
from puente.evidence.receipt import Receipt
from puente.evidence.records import AuditDecision, AuditRecord, DeliveryDeadlines
from puente.evidence.trust import KeyEntry, TrustList, Usage, member_holder, node_holder
from puente.evidence.trustsource import TrustTracker
from puente.evidence.verify import RECEIPT_CONTEXT, Verifier, sign_receipt
from puente.kafka.clients import consumer, producer, start
from puente.kafka.reading import read_to_end, topic_partitions
from puente.logs import configure_logging
from puente.receipts.track import Incoming, Track, TrackBook
from puente.receipts.tracker import ReceiptTracker, TrackerConfig
from puente.service.nodekeys import FixedKeys
from puente.topics import AUDIT, OVERDUE, RECEIPT_KEY_ID_HEADER, RECEIPT_SIGNATURE_HEADER, RECEIPTS
from tests.harness import KafkaHarness, Tenant, kafka_harness

ORIGIN = "MX"
RECIPIENTS = ("GT", "HN", "US")
HOUR = 3_600_000
LEGAL = ('Vienna Convention on Consular Relations (1963), Art. 37(a) ("without delay")',)


class World:
    """MX's node key, three recipients' receipt keys, a trust list of them."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.root = SigningKey.generate("puente.operator/root")
        self.node = SigningKey.generate("puente.node/MX")
        self.keys = {m: SigningKey.generate(f"puente.member/{m}") for m in RECIPIENTS}
        since = now_ms() - 400 * 24 * HOUR
        tl = TrustList(
            1,
            since,
            now_ms() + 400 * 24 * HOUR,
            (
                KeyEntry(self.node.public, node_holder(ORIGIN), frozenset({Usage.DELIVERY}), since),
                *(
                    KeyEntry(k.public, member_holder(m), frozenset({Usage.RECEIPT}), since)
                    for m, k in self.keys.items()
                ),
            ),
        )
        self.signed = tl.sign(self.root)
        self.verifier = Verifier(
            trust_list=TrustList.open(self.signed, [self.root.public], now=now_ms()),
            registry=registry,
        )

    def trust(self) -> TrustTracker:
        return TrustTracker.with_list(self.signed, [self.root.public], self.registry)

    def deliveries(
        self, n: int, prefix: str, *, decided_at: int, receive_in: int = 2 * HOUR
    ) -> list[AuditRecord]:
        out = []
        for i in range(n):
            notice_id = str(uuid.uuid4())
            out.append(
                AuditRecord(
                    decided_at=decided_at,
                    ingress_topic=f"{prefix}.ingress.MX",
                    ingress_partition=0,
                    ingress_offset=i,
                    origin=ORIGIN,
                    decision=AuditDecision.DELIVERED,
                    original_sha256=hashlib.sha256(notice_id.encode()).digest(),
                    notice_id=notice_id,
                    notice_schema="puente.ConsularNotification",
                    recipient=RECIPIENTS[i % len(RECIPIENTS)],
                    delivered_sha256=hashlib.sha256(b"p" + notice_id.encode()).digest(),
                    delivery_id=str(uuid.uuid4()),
                    delivery_digest=hashlib.sha256(b"d" + notice_id.encode()).digest(),
                    deadlines=DeliveryDeadlines(
                        type="ConsularNotification/DEATH",
                        receive_by=decided_at + receive_in,
                        acknowledge_by=decided_at + 24 * HOUR,
                        deadline_ids=("deadline.vccr.37-death",),
                        legal_bases=LEGAL,
                    ),
                    log_id=f"{prefix}.audit/MX/0",
                    leaf_index=i,
                )
            )
        return out

    def receipt(self, record: AuditRecord, at: int) -> tuple[str, bytes, str, bytes]:
        """(recipient, receipt bytes, key id, signature) of a machine receipt of ``record``."""
        assert record.recipient is not None and record.delivery_digest is not None
        rec = Receipt(
            receipt_id=str(uuid.uuid4()),
            notice_id=record.notice_id or "",
            recipient=record.recipient,
            delivery_digest=record.delivery_digest.hex(),
            log_id=record.log_id,
            log_index=record.leaf_index,
            received_at=at,
        )
        data = rec.encode(self.registry)
        key = self.keys[record.recipient]
        return record.recipient, data, key.key_id, sign_receipt(key, data)


# --- 1. judging, pure ------------------------------------------------------------------------


def judging(world: World, n: int, runs: int) -> tuple[float, float]:
    """(receipts/s judged, receipts/s Ed25519-verified alone), medians of ``runs``."""
    decided = now_ms() - HOUR
    records = world.deliveries(n, "puente", decided_at=decided)
    receipts = [world.receipt(r, decided + 60_000) for r in records]
    public = {m: k.public for m, k in world.keys.items()}
    judged, verified = [], []
    for _ in range(runs):
        book = TrackBook(ORIGIN, world.registry)
        for r in records:
            book.deliver(r)
        incoming = [Incoming(m, data, kid, sig, decided + 61_000) for m, data, kid, sig in receipts]
        t0 = time.perf_counter()
        for item in incoming:
            assert book.judge(item, world.verifier).accepted
        judged.append(n / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        for m, data, _, sig in receipts:
            public[m].verify(sig, RECEIPT_CONTEXT + data)
        verified.append(n / (time.perf_counter() - t0))
    return statistics.median(judged), statistics.median(verified)


# --- 2. the tracker on the real broker ------------------------------------------------------------


async def fill_audit(tenant: Tenant, world: World, n: int) -> list[AuditRecord]:
    """``n`` deliveries on audit.MX, as MX's node principal."""
    records = world.deliveries(n, tenant.naming.prefix, decided_at=now_ms() - HOUR)
    cred = tenant.node(ORIGIN)
    p = producer(tenant.endpoint, cred, linger_ms=20)
    await start(p, tenant.endpoint, cred)
    try:
        futures = [
            await p.send(tenant.topic(AUDIT, ORIGIN), r.encode(world.registry), partition=0)
            for r in records
        ]
        await asyncio.gather(*futures)
    finally:
        await p.stop()
    return records


async def fill_receipts(tenant: Tenant, world: World, records: list[AuditRecord]) -> None:
    """A signed machine receipt of each delivery, as its recipient's principal, on its topic
    (signed beforehand: what is timed is getting them to Kafka)."""
    at = now_ms() - 1000
    signed = [world.receipt(r, at) for r in records]
    for member in RECIPIENTS:
        cred = tenant.member(member)
        p = producer(tenant.endpoint, cred, linger_ms=20)
        await start(p, tenant.endpoint, cred)
        try:
            futures = [
                await p.send(
                    tenant.topic(RECEIPTS, member),
                    data,
                    key=(r.notice_id or "").encode(),
                    headers=[
                        (RECEIPT_KEY_ID_HEADER, kid.encode()),
                        (RECEIPT_SIGNATURE_HEADER, sig),
                    ],
                )
                for r, (m, data, kid, sig) in zip(records, signed, strict=True)
                if m == member
            ]
            await asyncio.gather(*futures)
        finally:
            await p.stop()


def tracker(tenant: Tenant, world: World, clock: Callable[[], int]) -> ReceiptTracker:
    return ReceiptTracker(
        origin=ORIGIN,
        endpoint=tenant.endpoint,
        credential=tenant.tracker(ORIGIN),
        naming=tenant.naming,
        registry=world.registry,
        members=(ORIGIN, *RECIPIENTS),
        keys=FixedKeys(world.node),
        trust=world.trust(),
        clock=clock,
        config=TrackerConfig(),
        instance="bench",
    )


async def cold_start(kafka: KafkaHarness, world: World, n: int) -> tuple[float, float]:
    """Seconds (wall, and this process's CPU: the tracker's, the broker being another process)
    a new tracker takes to judge and commit ``n`` receipts of ``n`` deliveries waiting for it
    (from its start to its ``ready``: caught up with every input)."""
    tenant = kafka.provision([ORIGIN, *RECIPIENTS], partitions=4)
    await fill_receipts(tenant, world, await fill_audit(tenant, world, n))
    t = tracker(tenant, world, now_ms)
    stop = asyncio.Event()
    t0, c0 = time.perf_counter(), time.process_time()
    task = asyncio.create_task(t.run(stop))
    await asyncio.wait_for(t.ready.wait(), 1800)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    stop.set()
    await task
    assert sum(1 for tr in t.book if tr.received_at is not None) == n
    return seconds, cpu


async def plain_read(kafka: KafkaHarness, world: World, n: int) -> float:
    """Receipts per second a plain read_committed consumer reads of the same topics."""
    tenant = kafka.provision([ORIGIN, *RECIPIENTS], partitions=4)
    await fill_receipts(tenant, world, await fill_audit(tenant, world, n))
    cred = tenant.tracker(ORIGIN)
    c = consumer(tenant.endpoint, cred)
    await start(c, tenant.endpoint, cred)
    try:
        tps = await topic_partitions(c, [tenant.topic(RECEIPTS, m) for m in RECIPIENTS])
        t0 = time.perf_counter()
        got = await read_to_end(c, tps)
        assert len(got) == n
        return n / (time.perf_counter() - t0)
    finally:
        await c.stop()


# --- 3. memory -------------------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def memory(world: World, n: int) -> tuple[float, float]:
    """(bytes per open delivery in a TrackBook, bytes per digest in a plain dict)."""
    decided = now_ms()
    gc.collect()
    before = rss_bytes()
    book = TrackBook(ORIGIN, world.registry)
    for i in range(n):
        book.put(
            Track(
                delivery_id=str(uuid.uuid4()),
                delivery_digest=os.urandom(32),
                notice_id=str(uuid.uuid4()),
                # Fresh copies, as decoding each record gives them: the book shares them.
                origin="".join(ORIGIN),
                recipient="".join(RECIPIENTS[i % 3]),
                type="".join("ConsularNotification/DEATH"),
                decided_at=decided,
                receive_by=decided + 2 * HOUR + i,
                acknowledge_by=decided + 24 * HOUR + i,
                deadline_ids=("deadline.vccr.37-death",),
                legal_bases=tuple("".join(x) for x in LEGAL),
                audit_log_id="".join("puente.audit/MX/0"),
                audit_leaf_index=i,
            )
        )
    gc.collect()
    per_track = (rss_bytes() - before) / n
    assert book.open_count == n
    del book
    gc.collect()
    before = rss_bytes()
    digests = {os.urandom(32): i for i in range(n)}
    gc.collect()
    per_digest = (rss_bytes() - before) / n
    assert len(digests) == n
    return per_track, per_digest


# --- 4. escalation delay ------------------------------------------------------------------------


async def escalation_delays(kafka: KafkaHarness, world: World, n: int) -> list[float]:
    """Seconds from each deadline to its report being readable on overdue.MX."""
    tenant = kafka.provision([ORIGIN, *RECIPIENTS], partitions=4)
    start_at = now_ms()
    # Deadlines 5 s after now, spread over 2 s: they pass while the tracker runs.
    records = world.deliveries(n, tenant.naming.prefix, decided_at=start_at, receive_in=5000)
    records = [
        dataclasses.replace(r, deadlines=_moved(r, i * 2000 // n)) for i, r in enumerate(records)
    ]
    cred = tenant.node(ORIGIN)
    p = producer(tenant.endpoint, cred)
    await start(p, tenant.endpoint, cred)
    try:
        for r in records:
            await p.send_and_wait(tenant.topic(AUDIT, ORIGIN), r.encode(world.registry))
    finally:
        await p.stop()
    deadline_of = {
        r.delivery_id: r.deadlines.receive_by
        for r in records
        if r.deadlines is not None and r.deadlines.receive_by is not None
    }
    seen: dict[str, float] = {}
    ocred = tenant.member(ORIGIN)
    reader = consumer(tenant.endpoint, ocred)
    await start(reader, tenant.endpoint, ocred)
    t = tracker(tenant, world, now_ms)
    stop = asyncio.Event()
    task = asyncio.create_task(t.run(stop))
    try:
        tps = await topic_partitions(reader, [tenant.topic(OVERDUE, ORIGIN)])
        reader.assign(tps)
        await reader.seek_to_beginning(*tps)
        limit = time.monotonic() + 120
        while len(seen) < n and time.monotonic() < limit:
            got = await reader.getmany(timeout_ms=50)
            arrived = time.time() * 1000
            for messages in got.values():
                for m in messages:
                    report = world.verifier.verify_overdue_report(m.value or b"")
                    seen.setdefault(report.delivery_id, arrived)
    finally:
        stop.set()
        await task
        await reader.stop()
    assert len(seen) == n, (len(seen), n)
    return sorted((arrived - deadline_of[d]) / 1000 for d, arrived in seen.items())


def _moved(r: AuditRecord, by_ms: int) -> DeliveryDeadlines | None:
    d = r.deadlines
    if d is None or d.receive_by is None:
        return d
    return DeliveryDeadlines(
        type=d.type,
        receive_by=d.receive_by + by_ms,
        acknowledge_by=d.acknowledge_by,
        deadline_ids=d.deadline_ids,
        legal_bases=d.legal_bases,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--receipts", type=int, default=20_000)
    parser.add_argument("--open", type=int, default=1_000_000)
    parser.add_argument("--escalations", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    configure_logging("warning", "console")  # the escalations are the point here, not logs
    print(f"cores: {os.cpu_count()}; load average at start: {os.getloadavg()}")
    world = World(Registry.load(Settings().schemas_dir))

    judged, verified = judging(world, args.receipts, args.runs)
    print(f"\n1. judging {args.receipts:,} signed receipts, pure (median of {args.runs}):")
    print(f"   TrackBook.judge        {judged:10,.0f} receipts/s")
    print(f"   Ed25519 verify alone   {verified:10,.0f} receipts/s (baseline)")
    print(f"   judging costs {verified / judged:.2f}x the signature check alone")

    per_track, per_digest = memory(world, args.open)
    print(f"\n3. memory, {args.open:,} open deliveries in one TrackBook:")
    print(f"   {per_track:8.0f} bytes each = {per_track * 1e6 / 2**20:6.0f} MiB per million")
    print(f"   {per_digest:8.0f} bytes per 32-byte digest in a plain dict (baseline)")
    print(f"   a track costs {per_track / per_digest:.1f}x a bare digest")

    with kafka_harness() as kafka:
        print(f"\nkafka: {kafka.source}")
        small, full, plain = [], [], []
        for _ in range(args.runs):
            small.append(asyncio.run(cold_start(kafka, world, 10)))
            full.append(asyncio.run(cold_start(kafka, world, args.receipts)))
            plain.append(asyncio.run(plain_read(kafka, world, args.receipts)))
        t_small = statistics.median(w for w, _ in small)
        t_full = statistics.median(w for w, _ in full)
        cpu = (statistics.median(c for _, c in full) - statistics.median(c for _, c in small)) / (
            args.receipts - 10
        )
        rate = (args.receipts - 10) / (t_full - t_small)
        base = statistics.median(plain)
        print(
            f"\n2. the tracker on the broker (median of {args.runs}), a new tracker on a backlog:"
        )
        print(f"   10 receipts            {t_small:8.2f} s (start-up: fence, restore, positions)")
        print(f"   {args.receipts:<6,} receipts        {t_full:8.2f} s")
        print(f"   tracker                {rate:10,.0f} receipts/s judged and committed")
        print(f"   plain consumer         {base:10,.0f} receipts/s read (baseline, no judging)")
        print(f"   the tracker keeps {rate / base:.3f}x of the plain read rate")
        print(
            f"   tracker CPU            {cpu * 1e3:10.3f} ms per receipt "
            f"(≈ {1 / cpu:,.0f} receipts/s per free core)"
        )

        delays = asyncio.run(escalation_delays(kafka, world, args.escalations))
        q = statistics.quantiles(delays, n=100)
        print(f"\n4. escalation delay, {args.escalations} deadlines passing over 2 s:")
        print(
            f"   median {statistics.median(delays):.3f} s, p95 {q[94]:.3f} s, "
            f"max {max(delays):.3f} s (floor: the poll interval, {TrackerConfig().poll_s} s)"
        )
    print(f"\nload average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
