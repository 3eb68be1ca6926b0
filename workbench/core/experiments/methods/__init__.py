"""Reasoning methods: CoT, program-aided, plan-then-code, self-consistency, vote, selection."""
