"""mcint.processes (under construction)."""
