"""Experiments on labelled model traces (BIG-Bench Mistake, ProcessBench): finding the first
mistake, and backtracking at it."""
