"""Running the product's real processes, for the tests and the benchmarks alike.

``processes`` starts and waits for servers (redis-server, daphne), ``databases``
migrates one template database per run and copies it for every stack,
``stack`` runs web, worker and management commands the way an operator would,
and ``sandbox`` serves the third-party stand-ins in a process of their own.
Nothing here is imported by the product itself.
"""
