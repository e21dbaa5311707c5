#!/usr/bin/env python3
"""The award write path on SQLite and MySQL/MariaDB, against each database's own floor.

For one size it generates the demo community into a SQLite host database (`accolade gen`),
then for each awards database (SQLite, MariaDB):
  (w) times the write phase of `accolade run` (its own "wrote awards" log event) on fresh
      awards tables: every award is new, as in a first run;
  (f) the floor: the database's fastest bulk load of exactly those rows, sorted by the primary
      key, into an empty table with accolade_awards' schema (columns and indexes): on SQLite an
      INSERT ... SELECT from the attached awards file (no client at all; one transaction, the
      same WAL journal and synchronous setting), on MariaDB the faster of LOAD DATA LOCAL
      INFILE and a server-side INSERT ... SELECT.
Prints a table and writes OUT/write_paths.json.

Usage: bench/write_paths.py [--members 250000] [--accolade target/release/accolade] [--out bench/out]
MariaDB is reached as root@127.0.0.1:3306 with no password. Needs the sqlite3 and mysql
command-line clients. Only the standard library is used.
"""

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

AS_OF = "2026-06-01T00:00:00Z"


def sh(args, **kw):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kw)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def mysql(*args, database=None):
    base = ["mysql", "-h", "127.0.0.1", "-P", "3306", "-u", "root", "--local-infile=1"]
    return sh([*base, *([database] if database else []), *args])


def accolade_write(accolade, config):
    """Seconds of the write phase of a run, from its log, and the number of new awards."""
    done = subprocess.run(
        [accolade, "--config", str(config), "--log-format", "json", "run", "--as-of", AS_OF],
        text=True, capture_output=True, env={**os.environ, "ACCOLADE_LOG": "accolade=info"},
    )
    if done.returncode != 0:
        sys.exit(f"accolade run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    for line in (done.stdout + done.stderr).splitlines():
        if '"wrote awards"' in line:
            event = json.loads(line)
            awards = int(re.search(r"(\d+) new awards", done.stdout).group(1))
            return event["elapsed_ms"] / 1000, awards
    sys.exit(f"no 'wrote awards' event in the log:\n{done.stderr}")


def config_with_awards(host_config, awards_url, path):
    """The generated config with `database.awards_url` set."""
    text = Path(host_config).read_text()
    text = re.sub(r"(?m)^\[database\]\n", f"[database]\nawards_url = \"{awards_url}\"\n", text, count=1)
    Path(path).write_text(text)
    return path


def sqlite_key(awards_db):
    """The awards table's primary key columns, in key order."""
    return sh(["sqlite3", str(awards_db),
               "SELECT group_concat(name, ', ') FROM (SELECT name FROM pragma_index_info((SELECT name "
               "FROM pragma_index_list('accolade_awards') WHERE origin = 'pk')) ORDER BY seqno)"]).stdout.strip()


def sqlite_floor(awards_db, scratch):
    """SQLite storing the rows with no client at all: one INSERT ... SELECT of the run's awards,
    in key order, from the attached awards file into an empty table of the same schema, in one
    transaction, with the same WAL journal and synchronous setting as accolade's connections."""
    schema = sh(["sqlite3", str(awards_db), ".schema accolade_awards"]).stdout
    floor = scratch / "floor.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{floor}{suffix}").unlink(missing_ok=True)
    sh(["sqlite3", str(floor), "PRAGMA journal_mode=WAL", schema])
    insert = (f"ATTACH '{awards_db}' AS run; PRAGMA synchronous=FULL; "
              f"INSERT INTO main.accolade_awards SELECT * FROM run.accolade_awards ORDER BY {sqlite_key(awards_db)};")
    seconds = timed(lambda: sh(["sqlite3", str(floor), insert]))
    count = sh(["sqlite3", str(floor), "SELECT count(*) FROM accolade_awards"]).stdout.strip()
    return seconds, int(count)


def mysql_floor(database, scratch):
    """The faster of MariaDB's two bulk loads of the run's awards, in key order, into an empty
    table shaped like accolade_awards: LOAD DATA LOCAL INFILE from the client, and a server-side
    INSERT ... SELECT."""
    rows = scratch / "awards.tsv"
    key = mysql("-N", "-e", "SELECT GROUP_CONCAT(column_name ORDER BY seq_in_index) FROM "
                "information_schema.statistics WHERE table_schema = DATABASE() "
                "AND table_name = 'accolade_awards' AND index_name = 'PRIMARY'", database=database).stdout.strip()
    with open(rows, "w") as out:
        subprocess.run(["mysql", "-h", "127.0.0.1", "-u", "root", "-N", "-B", database, "-e",
                        f"SELECT * FROM accolade_awards ORDER BY {key}"],
                       check=True, text=True, stdout=out)
    fresh = "DROP TABLE IF EXISTS bench_write_floor; CREATE TABLE bench_write_floor LIKE accolade_awards"
    mysql("-e", fresh, database=database)
    # The client writes NULL as the text NULL: nullable columns are read through a variable and
    # turned back into NULL (a CHECK on one would otherwise refuse the row).
    columns = mysql("-N", "-e", "SELECT column_name, is_nullable FROM information_schema.columns WHERE "
                    "table_schema = DATABASE() AND table_name = 'accolade_awards' ORDER BY ordinal_position",
                    database=database).stdout.split("\n")
    columns = [line.split("\t") for line in columns if line.strip()]
    targets = ", ".join(f"@{name}" if nullable == "YES" else name for name, nullable in columns)
    nulls = ", ".join(f"{name} = NULLIF(@{name}, 'NULL')" for name, nullable in columns if nullable == "YES")
    load = timed(lambda: mysql("-e", f"LOAD DATA LOCAL INFILE '{rows}' INTO TABLE bench_write_floor "
                               "FIELDS TERMINATED BY '\\t' LINES TERMINATED BY '\\n' "
                               f"({targets}) SET {nulls}", database=database))
    count = mysql("-N", "-e", "SELECT count(*) FROM bench_write_floor", database=database).stdout.strip()
    mysql("-e", fresh, database=database)
    select = timed(lambda: mysql("-e", "INSERT INTO bench_write_floor SELECT * FROM accolade_awards "
                                 f"ORDER BY {key}", database=database))
    rows.unlink()
    return min(load, select), int(count), {"load_data_s": load, "insert_select_s": select}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=250_000)
    parser.add_argument("--accolade", default="target/release/accolade")
    parser.add_argument("--out", type=Path, default=Path("bench/out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    scratch = args.out.resolve()
    host = scratch / f"write-host-{args.members}.db"
    host_config = scratch / f"write-host-{args.members}.toml"
    if not host.exists():
        sh([args.accolade, "gen", "--users", str(args.members), "--url", f"sqlite://{host}",
            "--out", str(host_config)], env={**os.environ, "ACCOLADE_LOG": "warn"})
    results = {"members": args.members}

    awards_db = scratch / f"write-awards-{args.members}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{awards_db}{suffix}").unlink(missing_ok=True)
    sh(["sqlite3", str(awards_db), "VACUUM"])  # accolade opens only an existing file
    config = config_with_awards(host_config, f"sqlite://{awards_db}", scratch / "write-sqlite.toml")
    write, awards = accolade_write(args.accolade, config)
    floor, stored = sqlite_floor(awards_db, scratch)
    assert stored == awards, f"the floor stored {stored} rows, the run {awards}"
    results["sqlite"] = {"awards": awards, "write_s": write, "floor_s": floor}
    print(f"SQLite   {awards:,} awards: accolade write {write:6.2f}s, floor {floor:6.2f}s, "
          f"ratio {write / floor:.2f}", flush=True)

    database = f"accolade_write_{args.members}"
    mysql("-e", f"DROP DATABASE IF EXISTS {database}; CREATE DATABASE {database}")
    config = config_with_awards(host_config, f"mysql://root@127.0.0.1:3306/{database}",
                                scratch / "write-mysql.toml")
    write, awards = accolade_write(args.accolade, config)
    floor, stored, both = mysql_floor(database, scratch)
    assert stored == awards, f"the floor stored {stored} rows, the run {awards}"
    mysql("-e", f"DROP DATABASE {database}")
    results["mysql"] = {"awards": awards, "write_s": write, "floor_s": floor, **both}
    print(f"MariaDB  {awards:,} awards: accolade write {write:6.2f}s, floor {floor:6.2f}s, "
          f"ratio {write / floor:.2f}", flush=True)
    (args.out / f"write_paths-{args.members}.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
