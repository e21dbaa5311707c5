#!/usr/bin/env python3
"""accolade against SQL-per-badge, on the same PostgreSQL data.

For each size it generates the demo community (`accolade gen`) into a fresh database, then
times, one after the other:
  (a) the SQL-per-badge baseline (bench/baseline.sql: one INSERT ... SELECT per badge),
  (b) the floor: reading every source query's columns out with COPY ... TO STDOUT (FORMAT binary),
  (c) `accolade run`, first run (every award is new),
  (d) `accolade run`, second run (nothing new),
  (e) the write floor: a plain COPY of the awards of (c), sorted by the primary key, into an
      empty table shaped like accolade_awards (same columns, primary key and index),
checks that (a) and (c) award exactly the same (badge, member) pairs, and reports the ratios
c/a, c/b, d/a and the peak memory of (c). Then incremental runs (part 12): one
`accolade run --incremental` that keeps the state (a full pass), and for each K of
--incremental-k, the activity of K members (30 rows each: 20 posts, 5 connections, 5
sign-ins) appended five minutes after the last run, timed as
  (f) `accolade run --incremental` as of five minutes later,
checked against a full dry run as of the same instant before it (f awards exactly as many)
and after it (nothing left to award). Indexes on the event tables' time columns are created
first (outside the timing), as a host that lists recent activity has them. Results go to
OUT/results.json, OUT/results.md and OUT/chart.svg (time against members for a, b and c).

Usage: bench/run.py [--sizes 250000,500000,1000000] [--accolade target/release/accolade]
                    [--pg-url postgres://postgres@127.0.0.1:5432] [--out bench/out] [--keep]
                    [--incremental-k 1000,10000,100000]
Needs psql and GNU time (/usr/bin/time) on the PATH. Only the standard library is used.
"""

import argparse
import calendar
import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
TIMEZONE = "America/New_York"


def sh(args, **kw):
    return subprocess.run(args, check=True, text=True, capture_output=True, **kw)


def psql(url, *args, **kw):
    return sh(["psql", url, "-v", "ON_ERROR_STOP=1", "-X", "-q", *args], **kw)


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def accolade_run(accolade, config, as_of, *extra):
    """Runs accolade under GNU time; returns (seconds, peak RSS in MiB, stdout)."""
    # GNU time reports the peak memory; without it the run is still timed.
    timer = ["/usr/bin/time", "-v"] if os.path.exists("/usr/bin/time") else []
    start = time.perf_counter()
    done = subprocess.run(
        [*timer, accolade, "--config", str(config), "run", "--as-of", as_of, *extra],
        text=True, capture_output=True, env={**os.environ, "ACCOLADE_LOG": "warn"},
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"accolade run failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    peak = int(match.group(1)) / 1024 if match else None
    return seconds, peak, done.stdout


def mib(value):
    return "unknown" if value is None else f"{value:,.0f} MiB"


PER_MEMBER_SOURCES = ("users", "trainings", "roles", "settings", "metrics")


def copy_floor(url, config, only=None):
    """Seconds to read every source's needed columns (or those of the sources in `only`) with
    binary COPY, one after the other."""
    sources = tomllib.loads(Path(config).read_text())["sources"]
    total = 0.0
    for name, query in sources.items():
        if only is not None and name not in only:
            continue
        if name == "users":
            # The demo's users query also returns `email`, which only Open Badges exports read.
            query = f"SELECT user_id, created_at, blocked, avatar_changed FROM ({query}) AS s"
        sql = f"COPY ({query}) TO STDOUT (FORMAT binary)"
        seconds, _ = timed(lambda: subprocess.run(
            ["psql", url, "-X", "-q", "-c", sql], check=True, stdout=subprocess.DEVNULL))
        total += seconds
    return total


def write_floor(url, scratch):
    """Seconds for PostgreSQL to store the first run's awards at its fastest with the constraints
    the table needs: a plain COPY (no conflict check) of the rows, already sorted by the primary
    key, from the client into an empty table with accolade_awards' columns, primary key and
    member index. The rows are dumped to a file first, outside the timing."""
    rows = Path(scratch) / "write_floor.copy"
    psql(url, "-c", f"\\copy (SELECT * FROM accolade_awards ORDER BY badge_id, user_id) TO '{rows}'")
    psql(url, "-c", "DROP TABLE IF EXISTS bench_write_floor",
         "-c", "CREATE TABLE bench_write_floor (LIKE accolade_awards INCLUDING ALL)", "-c", "CHECKPOINT")
    seconds, _ = timed(lambda: psql(url, "-c", f"\\copy bench_write_floor FROM '{rows}'"))
    psql(url, "-c", "DROP TABLE bench_write_floor")
    rows.unlink()
    return seconds


def difference(url):
    """(only in baseline, only in accolade) pair counts for rule-evaluated badges."""
    sql = """
    SELECT (SELECT count(*) FROM (SELECT badge_id, user_id FROM bench_awards
                                  EXCEPT SELECT badge_id, user_id FROM accolade_awards) x),
           (SELECT count(*) FROM (SELECT badge_id, user_id FROM accolade_awards
                                  EXCEPT SELECT badge_id, user_id FROM bench_awards) y),
           (SELECT count(*) FROM bench_awards)
    """
    out = psql(url, "-t", "-A", "-F", ",", "-c", sql).stdout.strip()
    only_baseline, only_accolade, total = (int(v) for v in out.split(","))
    return only_baseline, only_accolade, total


def bench_size(args, members, as_of):
    name = f"accolade_bench_{members}"
    admin = f"{args.pg_url}/postgres"
    url = f"{args.pg_url}/{name}"
    psql(admin, "-c", f"DROP DATABASE IF EXISTS {name}", "-c", f"CREATE DATABASE {name}")
    config = args.out / f"bench-{members}.toml"
    gen_seconds, _ = timed(lambda: sh([args.accolade, "gen", "--users", str(members), "--url", url,
                                       "--out", str(config)], env={**os.environ, "ACCOLADE_LOG": "warn"}))
    rows = psql(url, "-t", "-A", "-c",
                "SELECT (SELECT count(*) FROM forum_posts) + (SELECT count(*) FROM friendships)"
                " + (SELECT count(*) FROM sign_ins) + (SELECT count(*) FROM enrollments)"
                " + (SELECT count(*) FROM member_roles) + (SELECT count(*) FROM profile_settings)"
                " + (SELECT count(*) FROM member_counters)").stdout.strip()
    print(f"  {members} members, {int(rows):,} activity rows, generated in {gen_seconds:.1f}s", flush=True)
    psql(url, "-c", "CHECKPOINT")

    baseline, _ = timed(lambda: psql(url, "-v", f"as_of={as_of}", "-v", f"tz={TIMEZONE}",
                                     "-f", str(HERE / "baseline.sql")))
    print(f"  (a) SQL per badge     {baseline:8.2f}s", flush=True)
    floor = copy_floor(url, config)
    print(f"  (b) COPY floor        {floor:8.2f}s", flush=True)
    first, peak, out = accolade_run(args.accolade, config, as_of)
    awards = int(re.search(r"(\d+) new awards", out).group(1))
    print(f"  (c) accolade, 1st run {first:8.2f}s  peak {mib(peak)}  {awards:,} awards", flush=True)
    second, peak2, out2 = accolade_run(args.accolade, config, as_of)
    print(f"  (d) accolade, 2nd run {second:8.2f}s  peak {mib(peak2)}", flush=True)
    floor_write = write_floor(url, args.out)
    print(f"  (e) write floor       {floor_write:8.2f}s", flush=True)
    only_baseline, only_accolade, total = difference(url)
    same = only_baseline == 0 and only_accolade == 0 and total == awards
    print(f"  awards match: {same} (baseline {total:,}, only baseline {only_baseline}, only accolade {only_accolade})")
    incremental = bench_incremental(args, url, config, as_of, members)
    if not args.keep:
        psql(admin, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    return {
        "members": members, "activity_rows": int(rows), "awards": awards,
        "baseline_s": baseline, "copy_floor_s": floor, "first_run_s": first, "second_run_s": second,
        "write_floor_s": floor_write, "b_plus_e_over_b": (floor + floor_write) / floor,
        "first_run_peak_mib": peak, "second_run_peak_mib": peak2,
        "c_over_a": first / baseline, "c_over_b": first / floor, "d_over_a": second / baseline,
        "c_over_b_plus_e": first / (floor + floor_write),
        "awards_match": same,
        "incremental": incremental,
    }


def later(as_of, minutes):
    """The RFC 3339 UTC instant `minutes` after `as_of`."""
    seconds = calendar.timegm(time.strptime(as_of, "%Y-%m-%dT%H:%M:%SZ")) + minutes * 60
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def append_activity(url, members, k, since, seed):
    """30 rows for each of K members (a random sample, repeatable) dated in the 200 seconds after
    `since`."""
    sql = f"""
    CREATE TEMP TABLE picked AS
      SELECT DISTINCT 1 + ((i::bigint * 2654435761 + {seed}) % {members}) AS id
      FROM generate_series(1, {k}) AS i;
    INSERT INTO forum_posts (author_id, thread_id, post_type, posted_at)
      SELECT id, (id * 7 + n) % 5000, CASE WHEN n % 4 = 0 THEN 'question' ELSE 'reply' END,
             (TIMESTAMPTZ '{since}' + (n + 1) * interval '10 seconds') AT TIME ZONE 'UTC'
      FROM picked, generate_series(1, 20) AS n;
    INSERT INTO friendships (member_id, friend_id, accepted_at)
      SELECT id, 1 + (id * 13 + n) % {members}, extract(epoch FROM TIMESTAMPTZ '{since}')::bigint + n + 1
      FROM picked, generate_series(1, 5) AS n;
    INSERT INTO sign_ins (member_id, signed_in_at)
      SELECT id, TIMESTAMPTZ '{since}' + (n + 1) * interval '30 seconds'
      FROM picked, generate_series(1, 5) AS n;
    SELECT count(*) FROM picked;
    """
    out = psql(url, "-t", "-A", "-c", sql).stdout.split()
    return int(out[-1]) if out else 0


def bench_incremental(args, url, config, as_of, members):
    """(f) at each K, after a run that keeps the incremental state."""
    psql(url, "-c", "CREATE INDEX IF NOT EXISTS forum_posts_posted_at ON forum_posts (posted_at)",
         "-c", "CREATE INDEX IF NOT EXISTS friendships_accepted_at ON friendships (accepted_at)",
         "-c", "CREATE INDEX IF NOT EXISTS sign_ins_signed_in_at ON sign_ins (signed_in_at)",
         "-c", "ANALYZE", "-c", "CHECKPOINT")
    keep, keep_peak, _ = accolade_run(args.accolade, config, as_of, "--incremental")
    print(f"  (f0) first --incremental (full, keeps state) {keep:8.2f}s  peak {mib(keep_peak)}", flush=True)
    # What detecting in-place changes costs at the least without help from the host: reading
    # the per-member sources once (no change timestamps to push down).
    per_member = copy_floor(url, config, PER_MEMBER_SOURCES)
    print(f"  (g) COPY floor of the per-member sources {per_member:8.2f}s", flush=True)
    results = []
    at = as_of
    for n, k in enumerate(int(v) for v in args.incremental_k.split(",") if v):
        nxt = later(at, 5)
        picked = append_activity(url, members, k, at, 7 + n)
        psql(url, "-c", "ANALYZE")
        _, _, before = accolade_run(args.accolade, config, nxt, "--dry-run")
        would = int(re.search(r"(\d+) new awards", before).group(1))
        seconds, peak, out = accolade_run(args.accolade, config, nxt, "--incremental")
        evaluated = re.search(r"incremental pass: (\d+) members evaluated", out)
        new = int(re.search(r"(\d+) new awards", out).group(1))
        _, _, after = accolade_run(args.accolade, config, nxt, "--dry-run")
        left = int(re.search(r"(\d+) new awards", after).group(1))
        same = evaluated is not None and new == would and left == 0
        print(f"  (f) K={k:,}: {seconds:8.2f}s  peak {mib(peak)}  {int(evaluated.group(1)) if evaluated else 'FULL'} "
              f"members evaluated, {new:,} awards (a full run: {would:,}; left after: {left})", flush=True)
        results.append({"k": k, "members_with_activity": picked, "seconds": seconds, "peak_mib": peak,
                        "evaluated": int(evaluated.group(1)) if evaluated else None, "new_awards": new,
                        "full_run_awards": would, "left_after": left, "same_as_full": same})
        at = nxt
    return {"keep_state_run_s": keep, "keep_state_peak_mib": keep_peak, "per_member_copy_floor_s": per_member,
            "passes": results}


def chart(results, path):
    """Seconds against members for (a), (b), (c) and (d)."""
    series = [("SQL per badge (a)", "baseline_s", "#d62728"), ("COPY floor (b)", "copy_floor_s", "#7f7f7f"),
              ("accolade first run (c)", "first_run_s", "#1f77b4"), ("accolade second run (d)", "second_run_s", "#2ca02c")]
    line_chart([(label, colour, [(r["members"], r[key]) for r in results]) for label, key, colour in series],
               "members", path)


def table(results):
    lines = ["| members | activity rows | awards | (a) SQL per badge | (b) COPY floor | (c) first run | (d) second run | (e) write floor | c/a | c/b | c/(b+e) | d/a | peak memory (c) | same awards |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|"]
    for r in results:
        lines.append(f"| {r['members']:,} | {r['activity_rows']:,} | {r['awards']:,} | {r['baseline_s']:.1f} s | "
                     f"{r['copy_floor_s']:.1f} s | {r['first_run_s']:.1f} s | {r['second_run_s']:.1f} s | "
                     f"{r['write_floor_s']:.1f} s | {r['c_over_a']:.2f} | {r['c_over_b']:.2f} | "
                     f"{r['c_over_b_plus_e']:.2f} | {r['d_over_a']:.2f} | "
                     f"{mib(r['first_run_peak_mib'])} | {'yes' if r['awards_match'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def line_chart(series, xlabel, path):
    """A dependency-free SVG line chart of seconds: `series` is [(label, colour, [(x, y)])]."""
    width, height, pad = 640, 400, 60
    points = [pt for _, _, pts in series for pt in pts] or [(1, 1)]
    xmax, ymax = max(x for x, _ in points) * 1.05 or 1, max(y for _, y in points) * 1.1 or 1

    def px(x, y):
        return pad + x / xmax * (width - 2 * pad), height - pad - y / ymax * (height - 2 * pad)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="black"/>',
             f'<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{height - pad}" stroke="black"/>',
             f'<text x="{width / 2}" y="{height - 15}" text-anchor="middle">{xlabel}</text>',
             f'<text x="15" y="{height / 2}" transform="rotate(-90 15 {height / 2})" text-anchor="middle">seconds</text>']
    for i in range(5):
        y = ymax * i / 4
        parts.append(f'<text x="{pad - 5}" y="{px(0, y)[1] + 4}" text-anchor="end">{y:.1f}</text>')
    for x in sorted({x for x, _ in points}):
        parts.append(f'<text x="{px(x, 0)[0]}" y="{height - pad + 16}" text-anchor="middle">{x:,}</text>')
    for n, (label, colour, pts) in enumerate(series):
        line = " ".join(f"{px(x, y)[0]:.1f},{px(x, y)[1]:.1f}" for x, y in pts)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{line}"/>')
        parts.extend(f'<circle cx="{px(x, y)[0]:.1f}" cy="{px(x, y)[1]:.1f}" r="3" fill="{colour}"/>' for x, y in pts)
        parts.append(f'<text x="{pad + 10}" y="{pad + 15 * n}" fill="{colour}">{label}</text>')
    parts.append("</svg>")
    path.write_text("\n".join(parts) + "\n")


def incremental_charts(results, out):
    """(f) against K at the largest size, and (f) at the first K against members."""
    largest = max(results, key=lambda r: r["members"])
    passes = largest["incremental"]["passes"]
    line_chart([(f"(f) incremental, {largest['members']:,} members", "#1f77b4", [(p["k"], p["seconds"]) for p in passes]),
                ("(g) per-member COPY floor", "#7f7f7f",
                 [(p["k"], largest["incremental"]["per_member_copy_floor_s"]) for p in passes]),
                ("(d) full second run", "#2ca02c", [(p["k"], largest["second_run_s"]) for p in passes])],
               "members with new activity (K)", out / "chart_incremental_k.svg")
    firsts = [(r["members"], r["incremental"]["passes"][0]["seconds"]) for r in results if r["incremental"]["passes"]]
    line_chart([("(f) incremental, first K", "#1f77b4", firsts),
                ("(g) per-member COPY floor", "#7f7f7f",
                 [(r["members"], r["incremental"]["per_member_copy_floor_s"]) for r in results])],
               "members", out / "chart_incremental_members.svg")


def incremental_table(results):
    lines = ["| members | K | (f) incremental | evaluated | awards (= full run) | f/a | f/d | (g) per-member COPY floor | f/g | peak (f) | peak (f) / peak (c) |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        for p in r["incremental"]["passes"]:
            ratio = (p["peak_mib"] / r["first_run_peak_mib"]) if p["peak_mib"] and r["first_run_peak_mib"] else None
            lines.append(f"| {r['members']:,} | {p['k']:,} | {p['seconds']:.2f} s | {p['evaluated'] or 'full'} | "
                         f"{p['new_awards']:,} ({'yes' if p['same_as_full'] else 'NO'}) | "
                         f"{p['seconds'] / r['baseline_s']:.3f} | {p['seconds'] / r['second_run_s']:.3f} | "
                         f"{r['incremental']['per_member_copy_floor_s']:.2f} s | "
                         f"{p['seconds'] / r['incremental']['per_member_copy_floor_s']:.2f} | "
                         f"{mib(p['peak_mib'])} | {'unknown' if ratio is None else f'{ratio:.2f}'} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="250000,500000,1000000")
    parser.add_argument("--accolade", default=str(HERE.parent / "target/release/accolade"))
    parser.add_argument("--pg-url", default="postgres://postgres@127.0.0.1:5432")
    parser.add_argument("--out", type=Path, default=HERE / "out")
    parser.add_argument("--as-of", default=time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime()),
                        help="the evaluation instant of every run (default: today 00:00 UTC)")
    parser.add_argument("--keep", action="store_true", help="keep the generated databases")
    parser.add_argument("--incremental-k", default="1000",
                        help="members with new activity for each incremental pass (comma-separated)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"size {size:,}", flush=True)
        results.append(bench_size(args, size, args.as_of))
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / "results.md").write_text(table(results) + "\n" + incremental_table(results))
    chart(results, args.out / "chart.svg")
    incremental_charts(results, args.out)
    print(table(results))
    print(incremental_table(results))
    if not all(r["awards_match"] for r in results):
        sys.exit("accolade and the SQL baseline awarded different members")
    if not all(p["same_as_full"] for r in results for p in r["incremental"]["passes"]):
        sys.exit("an incremental run did not award what a full run awards")


if __name__ == "__main__":
    main()
