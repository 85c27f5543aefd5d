"""Other providers' wire formats for the replay server, one module each (see ``tryouts.testing.app.DIALECTS``).

A dialect turns the same scripts as the OpenAI route (``tokens=5;ttft_ms=50;status=429;...``, read from
the request's model name with :func:`~tryouts.testing.script.parse_script`) into the provider's documented
stream: its event names, usage fields and error bodies. It opens the log entry with ``app.admit`` and
sends through :mod:`tryouts.testing.wire` (the sleep, the log, JSON bodies, non-streamed answers, cuts), so
the schedule and the log mean what they mean on the OpenAI route. Tests point a provider at
``http://127.0.0.1:PORT/<prefix>`` through the same base-URL override a user would set for a proxy.

Two modules here are not prefixes of their own: ``openai_batch`` (OpenAI's Files and Batch APIs, routed by
the app from ``/v1/files`` and ``/v1/batches``) and ``anthropic_batch`` (Message Batches, handed over by
``anthropic`` from ``/v1/messages/batches``); both build on :mod:`tryouts.testing.batchjob`.
"""
