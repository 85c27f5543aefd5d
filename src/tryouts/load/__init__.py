"""``tryouts load``: a load benchmark whose client is never the bottleneck (work in progress, issue #14).

* arrivals.py: the absolute schedule of each load point (constant, Poisson/gamma with burstiness, ramps, the
  no-catch-up rule under max concurrency);
* client.py: the hot path, one OpenAI-compatible streaming request over a raw kept-alive connection, stamped
  when its bytes are read;
* runner.py: one load point, dispatched from one or several worker processes on the machine's monotonic
  clock, open loop (a rate) or closed loop (N streams), with the garbage collector off while measuring;
* metrics.py: one load point's figures from its per-request rows (vLLM's keys where the meaning is the same,
  latency from the due time too, SLO attainment, goodput, cost).
"""
