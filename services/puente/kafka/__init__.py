"""Kafka at the edge: the local broker from Maven Central jars, provisioning, client settings."""
