"""The agency's side: notices sealed to the publishing state's own node, then published."""
