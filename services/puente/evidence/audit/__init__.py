"""The auditor: replay audit logs and checkpoints from an export (or any record source),
verify everything against the trust list, and report each anomaly with its position."""
