"""Perturb-and-recover experiments: off-policy, weak-model prefix, on-policy (shared continue stage)."""
