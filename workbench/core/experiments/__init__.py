"""Experiments: configs -> stages -> work items -> post-processing, and the runner."""
