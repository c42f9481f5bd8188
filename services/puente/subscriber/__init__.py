"""The partner-state side: receive, verify, decode and acknowledge deliveries."""
