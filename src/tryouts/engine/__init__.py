"""The run engine: turns (prompt x models) into measured, priced, stored results.

``execute`` runs one request on one provider and wraps everything the provider does not do
itself: stamping t0 and queue time, turning events into timings, counting missing tokens,
pricing. ``compare`` schedules one prompt across several models.
"""
