"""Django's PostgreSQL backend, with a pool that heals from a server that dropped every connection."""
