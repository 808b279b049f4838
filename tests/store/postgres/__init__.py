"""PostgreSQL only: start-up (migrations, configuration errors), lost races rerun, and many server processes
(concurrent writers, an outage, replicas) on the PostgreSQL the suite starts (tests/postgres_server.py)."""
