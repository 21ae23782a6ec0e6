"""Gymnasium environments of the simulated tasks."""
