"""``tryouts load``: a load benchmark whose client is never the bottleneck (work in progress, issue #14).

arrivals.py: the absolute schedule of each load point (constant, Poisson/gamma with burstiness, ramps, the
no-catch-up rule under max concurrency); metrics.py: one load point's figures from its per-request rows
(vLLM's keys where the meaning is the same, latency from the due time too, SLO attainment, goodput, cost).
"""
