"""Framework adapter tests against the real local engine."""
