"""Policies: scripted experts, episode runner and the s2r command line."""
