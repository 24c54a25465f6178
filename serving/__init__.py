"""Serving: the BentoML service for the champion model (see the serving issue)."""
