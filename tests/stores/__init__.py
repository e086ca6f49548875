"""Store-specific tests (what the conformance suite cannot see from outside)."""
