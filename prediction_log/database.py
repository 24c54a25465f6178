"""`pigeonhole db setup`: the database roles a deployed platform runs with, made by the administrator.

One PostgreSQL server holds the registry (MLflow's backend) and the prediction log, each in a database
of its own with a role of its own, so that a leaked credential reaches no more than its holder needs:

- the registry's role owns the registry's database, which no other role may connect to;
- the log's owner (the drift job, retraining) owns the log's database and its tables;
- the log's writer (the internet-facing service) may connect to the log's database and only INSERT
  into its tables (predictions, feedback, dead letters), through a temporary table of its own for
  COPY: it can read nothing back, change nothing stored, and never reach the registry.

Each role comes as a connection URL (user, password, database), the same URL its component connects
with, so the roles can never disagree with the credentials the pods hold. Running it again is safe: it
creates what is missing, resets each password to the one given and re-applies the grants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from pigeonhole.prediction_log.sinks import SEQUENCES, TABLES, migrate


@dataclass(frozen=True)
class Login:
    """Who connects where, read off a connection URL."""

    user: str
    password: str
    database: str

    @classmethod
    def of(cls, url: str) -> Login:
        parts = conninfo_to_dict(_plain(url))
        missing = [key for key in ("user", "dbname") if not parts.get(key)]
        if missing:
            raise ValueError(
                f"a role's URL needs {' and '.join(missing)}: postgresql://USER:PASSWORD@HOST/DB"
            )
        return cls(str(parts["user"]), str(parts.get("password") or ""), str(parts["dbname"]))


def _plain(url: str) -> str:
    """SQLAlchemy's driver prefix (MLflow's URLs carry it) is not libpq's."""
    return url.replace("postgresql+psycopg://", "postgresql://")


def setup_databases(admin_url: str, registry_url: str, log_url: str, writer_url: str) -> list[str]:
    """Create or update the three roles, the two databases and the log's tables; what was done, in order."""
    registry, owner, writer = Login.of(registry_url), Login.of(log_url), Login.of(writer_url)
    if registry.database == owner.database:
        raise ValueError("the registry and the log need databases of their own")
    if writer.database != owner.database:
        raise ValueError("the log's writer must connect to the log's database")
    if len({registry.user, owner.user, writer.user, Login.of(admin_url).user}) < 4:
        raise ValueError("the administrator, the registry, the log's owner and its writer need four roles")
    done: list[str] = []
    with psycopg.connect(_plain(admin_url), autocommit=True, connect_timeout=10) as admin:
        for login in (registry, owner, writer):
            done.append(_ensure_role(admin, login))
        for login in (registry, owner):
            done.append(_ensure_database(admin, login))
        # TEMPORARY: a batch of predictions arrives by COPY into a session's own temporary table
        admin.execute(
            sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                sql.Identifier(owner.database), sql.Identifier(writer.user)
            )
        )
    with psycopg.connect(_plain(log_url), autocommit=False, connect_timeout=10) as log:
        with log.transaction():
            changed = migrate(log)
            tables = sql.SQL(", ").join(sql.Identifier(table) for table in TABLES)
            writer_role = sql.Identifier(writer.user)
            log.execute(sql.SQL("REVOKE ALL ON {} FROM PUBLIC, {}").format(tables, writer_role))
            log.execute(sql.SQL("GRANT INSERT ON {} TO {}").format(tables, writer_role))
            sequences = sql.SQL(", ").join(sql.Identifier(sequence) for sequence in SEQUENCES)
            log.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sequences, writer_role))
        done.append(f"log tables {'created or upgraded' if changed else 'up to date'} in {owner.database}")
        done.append(f"{writer.user} may only insert into {', '.join(TABLES)}")
    return done


def _ensure_role(admin: psycopg.Connection[Any], login: Login) -> str:
    found = admin.execute(
        "SELECT rolsuper OR rolcreaterole OR rolcreatedb OR rolbypassrls FROM pg_roles WHERE rolname = %s",
        (login.user,),
    ).fetchone()
    role, password = sql.Identifier(login.user), sql.Literal(login.password)
    # a password cannot be a bound parameter of CREATE/ALTER ROLE; Literal quotes it client-side
    if found is None:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
                role, password
            )
        )
        return f"role {login.user} created"
    if found[0]:  # only a superuser may take these away: refuse rather than run with them
        raise ValueError(
            f"role {login.user} may create roles or databases, or is a superuser: revoke that first"
        )
    admin.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(role, password))
    return f"role {login.user} updated"


def _ensure_database(admin: psycopg.Connection[Any], login: Login) -> str:
    exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (login.database,)).fetchone()
    database, role = sql.Identifier(login.database), sql.Identifier(login.user)
    # a non-superuser administrator (RDS's master user) may only give a database to a role it belongs to
    admin.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))
    if not exists:
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, role))
    else:
        admin.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, role))
    # every role may connect to every database by default: only the owner (and grants below) may here
    admin.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(database))
    return f"database {login.database} {'owned by' if exists else 'created for'} {login.user}"
