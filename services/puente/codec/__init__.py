"""Avro data model: the schema registry over schemas/, single-object encoding, JSON conversion."""
