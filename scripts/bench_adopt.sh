#!/usr/bin/env bash
# Times `seedcore db adopt` on the original service's schema (the lowercase-enum version with
# locks, leases, the attempts check and the graph_tasks view) holding a million tasks and a
# million facts, the way docs/benchmarks.md reports it.
#
# Usage:
#   scripts/bench_adopt.sh [TASKS] [FACTS]
# Environment:
#   SEEDCORE_BENCH_DATABASE_URL  admin URL of the server (default
#                                postgres://postgres@127.0.0.1:5432/postgres); the script
#                                creates and drops the database seedcore_bench_adopt there
#   SEEDCORE                     the binary to time (default target/release/seedcore, else
#                                target/debug/seedcore, under $CARGO_TARGET_DIR if set)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

tasks=${1:-1000000}
facts=${2:-1000000}
admin=${SEEDCORE_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}
db=seedcore_bench_adopt
url="${admin%/*}/$db"
target=${CARGO_TARGET_DIR:-target}
seedcore=${SEEDCORE:-}
if [[ -z $seedcore ]]; then
    seedcore=$target/release/seedcore
    [[ -x $seedcore ]] || seedcore=$target/debug/seedcore
fi
[[ -x $seedcore ]] || { echo "bench_adopt.sh: build seedcore first (cargo build --release)" >&2; exit 1; }
fixtures=crates/seedcore/tests/fixtures/adopt

log() { printf 'bench_adopt.sh: %s\n' "$*" >&2; }

psql -q -v ON_ERROR_STOP=1 "$admin" -c "drop database if exists $db" -c "create database $db"
trap 'psql -q "$admin" -c "drop database if exists $db with (force)" >/dev/null' EXIT

log "building the original's schema with $tasks tasks and $facts facts"
cat "$fixtures/v2_lowercase_enum_leases.sql" "$fixtures/facts_common.sql" \
    | psql -q -v ON_ERROR_STOP=1 "$url"
# Mostly finished tasks, as in a service that has run for a while; a few of every other
# status, running ones with an expired lock (rescued) and a live lease (kept).
psql -q -v ON_ERROR_STOP=1 -v tasks="$tasks" -v facts="$facts" "$url" <<'SQL'
insert into tasks (id, type, description, params, domain, drift_score, status, result, error,
                   created_at, updated_at, attempts, locked_by, locked_at, run_after,
                   owner_id, lease_expires_at)
select gen_random_uuid(),
       (array['echo', 'noop', 'sleep', 'fact_store'])[1 + i % 4],
       case when i % 10 = 0 then null else 'task ' || i end,
       case when i % 20 = 0 then null else jsonb_build_object('n', i) end,
       case when i % 3 = 0 then 'math' end,
       (i % 100) / 100.0,
       s.status::taskstatus,
       case when s.status = 'completed' then jsonb_build_object('success', true) end,
       case when s.status in ('failed', 'retry') then 'error ' || i end,
       now() - make_interval(secs => i), now() - make_interval(secs => i) + interval '1 second',
       case when s.status in ('created', 'queued') then 0 else 1 end,
       case when s.status = 'running' then 'worker-' || i % 8 end,
       case when s.status = 'running' then now() - make_interval(mins => i % 120) end,
       case when s.status = 'retry' then now() + make_interval(secs => i % 600) end,
       case when s.status = 'running' then 'worker-' || i % 8 end,
       case when s.status = 'running' and i % 2 = 0 then now() + interval '1 hour' end
from generate_series(1, :tasks) i
cross join lateral (
    select case
               when i % 100 < 80 then 'completed'
               when i % 100 < 88 then 'failed'
               when i % 100 < 92 then 'cancelled'
               when i % 100 < 96 then 'queued'
               when i % 100 < 98 then 'created'
               when i % 100 < 99 then 'retry'
               else 'running'
           end as status
) s;

insert into facts (text, tags, meta_data, created_at, updated_at)
select 'fact ' || i || ' about ' || (array['energy', 'organs', 'memory', 'drift'])[1 + i % 4]
           || ' ' || md5(i::text),
       case when i % 5 = 0 then null else array['t' || i % 50, 'bench'] end,
       case when i % 7 = 0 then null else jsonb_build_object('source', 'bench', 'i', i) end,
       now() - make_interval(secs => i), now() - make_interval(secs => i)
from generate_series(1, :facts) i;

vacuum analyze tasks;
vacuum analyze facts;
SQL

log "adopting with $seedcore"
start=$(date +%s.%N)
"$seedcore" db adopt --pg-dsn "$url" > /tmp/bench_adopt.out
end=$(date +%s.%N)
grep -E '^\[|^adopted' /tmp/bench_adopt.out >&2
"$seedcore" db init --pg-dsn "$url" | grep -E 'migrations:|verified' >&2
printf 'db adopt: %s tasks and %s facts in %.1f s (wall clock, the binary included)\n' \
    "$tasks" "$facts" "$(echo "$end - $start" | bc)"
