"""The policy engine: data-sharing rules per origin state under a regional protection floor."""
