"""Measurement code behind scripts/ground_truth.py (see that file)."""
