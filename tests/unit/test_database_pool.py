"""runworker sizes the PostgreSQL pool to its concurrency: a job holds a connection while it waits on a gateway."""

from __future__ import annotations

from django.db import connections

from jobs.concurrency import fit_database_pool


def test_a_small_pool_grows_to_the_thread_count(monkeypatch):
    options = dict(connections["default"].settings_dict.get("OPTIONS", {}))
    options["pool"] = {"min_size": 1, "max_size": 20, "timeout": 10}
    monkeypatch.setitem(connections["default"].settings_dict, "OPTIONS", options)
    assert fit_database_pool(50) == 52
    assert options["pool"]["max_size"] == 52
    assert fit_database_pool(10) == 52  # never shrunk


def test_without_a_pool_nothing_changes(monkeypatch):
    options = {k: v for k, v in connections["default"].settings_dict.get("OPTIONS", {}).items() if k != "pool"}
    monkeypatch.setitem(connections["default"].settings_dict, "OPTIONS", options)
    assert fit_database_pool(50) is None
