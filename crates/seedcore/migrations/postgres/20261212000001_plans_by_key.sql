-- The claim and the completion plan their statements once per session, and every plan they
-- may keep finds tasks by key.
--
-- PL/pgSQL prepares each statement, but PostgreSQL chose a custom plan on every claim (the
-- generic plan of `limit how_many` never looks cheaper), planning anew for ~5 % of a drain's
-- time; about half the completions ran generic plans and the rest custom ones. Both shapes
-- could read all of `tasks`: while the hot table holds a few thousand to some tens of
-- thousands of rows the planner may join a batch to it by a hash join over a sequential scan,
-- and a generic plan made while the table is small or empty keeps that shape, or a nested loop
-- over a materialized sequential scan, as the table grows. Forcing the generic plan alone did
-- exactly that when the table started empty. So both functions now force the generic plan and
-- rule out what would read the table whole: sequential scans (only the lookups in `queues`, a
-- table of a few rows with nothing better to use, still scan it), hash and merge joins. What
-- remains joins a batch to `tasks` by its primary key and walks `tasks_ready_idx` in order, at
-- any size the table had when the plan was made. JIT stays off, so a disabled node's cost
-- cannot switch it on. Bitmap scans stay allowed in the completion. An analyze of `tasks` still
-- invalidates the kept plans, and the next call makes them again from the new statistics.

alter function seedcore_claim(text, bigint, double precision, double precision,
                              double precision, text[], text[], text[])
    set enable_seqscan = off;
alter function seedcore_claim(text, bigint, double precision, double precision,
                              double precision, text[], text[], text[])
    set enable_hashjoin = off;
alter function seedcore_claim(text, bigint, double precision, double precision,
                              double precision, text[], text[], text[])
    set enable_mergejoin = off;
alter function seedcore_claim(text, bigint, double precision, double precision,
                              double precision, text[], text[], text[])
    set plan_cache_mode = force_generic_plan;

alter function seedcore_finish(uuid[], uuid[], text[], jsonb[], text[], timestamptz[])
    set enable_seqscan = off;
alter function seedcore_finish(uuid[], uuid[], text[], jsonb[], text[], timestamptz[])
    set enable_hashjoin = off;
alter function seedcore_finish(uuid[], uuid[], text[], jsonb[], text[], timestamptz[])
    set enable_mergejoin = off;
alter function seedcore_finish(uuid[], uuid[], text[], jsonb[], text[], timestamptz[])
    set plan_cache_mode = force_generic_plan;

-- Settling dependents runs inside the completion, so it would inherit the settings above, and so
-- would the update trigger its statement fires, whose joins of transition tables need hash joins
-- when a settle queues thousands of children. It keeps the planner's usual choices.
alter function seedcore_settle_dependents(uuid[]) set plan_cache_mode = auto;
alter function seedcore_settle_dependents(uuid[]) set enable_seqscan = on;
alter function seedcore_settle_dependents(uuid[]) set enable_hashjoin = on;
alter function seedcore_settle_dependents(uuid[]) set enable_mergejoin = on;
