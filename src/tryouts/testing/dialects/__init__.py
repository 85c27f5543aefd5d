"""Other providers' wire formats for the replay server, one module each (see ``replay.DIALECTS``).

A dialect turns the same scripts as the OpenAI route (``tokens=5;ttft_ms=50;status=429;...``, read from
the request's model name) into the provider's documented stream: its event names, usage fields and error
bodies. Tests point a provider at ``http://127.0.0.1:PORT/<prefix>`` through the same base-URL override a
user would set for a proxy.
"""
