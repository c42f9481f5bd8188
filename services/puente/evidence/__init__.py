"""Evidence: keys and the trust list, signed deliveries, the Merkle audit log, checkpoints."""
