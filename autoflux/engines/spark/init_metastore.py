"""Create the Hive metastore's whole schema in PostgreSQL, once, from the command line (``deploy/bin/init-metastore.sh``)."""

from __future__ import annotations

import os

from autoflux.engine_settings import MetastoreSettings
from autoflux.engines.spark.metastore import address, check_reachable, ensure_schema
from autoflux.engines.spark.session import _classic_session, check_java
from autoflux.exceptions import EngineError


def main(argv: list[str] | None = None) -> int:
    """``python -m autoflux.engines.spark.init_metastore --url jdbc:postgresql://…``: create the schema, then exit.

    For deployments that start the Thrift server (or other Spark applications) before any
    AutoFlux process has touched the metastore. The password comes from ``--password-env``.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m autoflux.engines.spark.init_metastore", description=main.__doc__)
    parser.add_argument("--url", required=True, help="jdbc:postgresql://HOST:PORT/DATABASE")
    parser.add_argument("--user", default="postgres")
    parser.add_argument("--password-env", default="METASTORE_PASSWORD", help="environment variable holding the password")
    parser.add_argument("--driver-jar", default="/usr/share/java/postgresql.jar")
    args = parser.parse_args(argv)
    settings = MetastoreSettings(
        type="postgres", url=args.url, user=args.user, password=os.environ.get(args.password_env) or None, driver_jar=args.driver_jar
    )
    try:
        check_java()
        check_reachable(settings, 10)
        session = _classic_session(
            {"spark.master": "local[1]", "spark.ui.enabled": "false", "spark.driver.extraClassPath": settings.driver_jar}
        )
        try:
            created = ensure_schema(session, settings)
        finally:
            session.stop()
    except EngineError as error:
        print(f"error: {error}", flush=True)
        return 1
    host, port = address(args.url)
    print(f"metastore schema {'created' if created else 'already present'} at {host}:{port}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
