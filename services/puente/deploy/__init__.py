"""Deployment files for Puente beyond one machine: Docker Compose and Kubernetes (Strimzi).

Everything in ``deploy/compose/`` and ``deploy/k8s/`` that depends on the member list, the topic
definitions or the least-privilege plan is rendered here from the same sources the local
provisioner uses (``policies/members.yaml``, :mod:`puente.topics`,
:func:`puente.kafka.plan.build_plan`, :func:`puente.kafka.broker_config.server_properties`), so
there is one source of truth.
``puente deploy render`` writes the files; ``puente deploy check`` fails when the committed files
differ from what would be rendered.
"""
