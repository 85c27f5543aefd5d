"""Tools for testing Tryouts and the servers it talks to.

:mod:`tryouts.testing.replay` is a scripted OpenAI-style server: the request's ``model`` field is a
script (``tokens=32;ttft_ms=50;itl_ms=10``) that fixes what is streamed back and when, and the server
records when it really sent every chunk, so a client's timing can be checked against the truth::

    from tryouts.testing.replay import start_replay_server

    with start_replay_server() as base_url:  # http://127.0.0.1:PORT/v1
        ...

The server's pieces: ``script`` (the script grammar), ``wire`` (the log and what every route sends with),
``openai_route`` (chat completions), ``app`` (the ASGI app and its routing), ``dialects/`` (the other
providers' wire formats) and ``replay`` (running it, and the names tests import). Nothing here is
imported by the rest of Tryouts; it needs ``uvicorn`` (the ``dev`` extra).
"""
