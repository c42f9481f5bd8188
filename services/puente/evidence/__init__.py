"""Evidence: keys and the trust list, signed deliveries, the Merkle audit log, checkpoints, and
the auditor. Pure objects; files only at the edges (key store, export files).

There is no curated face: import from the module that defines a name (``puente.evidence.log``,
``puente.evidence.verify``, ...), the one import path each name has.

The policy service's calls, in order of use::

    keys = KeyStore(dir); key = keys.current("service:policy", usage=Usage.DELIVERY, at=now)
    log = AuditLog(audit_log_id("MX", 0))            # or AuditLog.from_state(LogState.decode(...))
    placed, value = log.append_record(registry, AuditRecord(...))   # produce `value` to audit
    cp = log.checkpoint(key, time_ms=now)            # produce cp.encode(registry) to checkpoints
    log.state().encode(registry)                     # persist with the same transaction
    DeliverySigner(key, registry).sign(statement, payload)          # per-delivery mode
    batch = DeliveryBatch(registry, "MX/0/1234"); batch.add(...); batch.seal(key, time_ms=now)

and a subscriber's::

    trust = TrustTracker([anchor], registry)          # puente.evidence.trustsource
    trust.offer(trust_list_bytes)                     # and refresh it while running
    trust.verifier().verify_delivery(value, recipient="GT")

Sealing (:mod:`puente.evidence.seal`; keys in :mod:`puente.evidence.enckeys`)::

    to = sealing_key(tl, member_holder("GT"), at=now)             # from the trust list
    sealer = BatchSealer(to, "GT")                                # one per batch and recipient
    sealed = sealer.seal(payload, notice_id=..., delivery_id=...)  # kind 0x04, per delivery
    opened = open_delivery(sealed.envelope, keys=KeyStore(dir).keyring("member:GT"), ...)
    seal_delivery(payload, to=to, notice_id=..., recipient="GT", delivery_id=...)  # kind 0x01
    seal_notice(notice, to=sealing_key(tl, node_holder("MX"), at=now), origin="MX")
"""
