"""The policy service: ingress → validate → decide → transform → sign → deliver, exactly once."""
