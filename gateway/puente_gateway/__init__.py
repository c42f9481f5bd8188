"""Puente's HTTP gateway: the front door for agencies that do not run a Kafka client."""
