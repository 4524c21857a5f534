-- Tasks and facts for the embedded store: the PostgreSQL schema in SQLite's types.
--
-- Ids are TEXT in the canonical lowercase hyphenated form, so text order is id order and a
-- prefix is a range. JSON (params, result, meta_data, tags) is TEXT as serde_json writes it.
-- Timestamps are TEXT of one fixed width, `YYYY-MM-DDTHH:MM:SS.ffffffZ` in UTC, so text order
-- is time order; the store binds them from its own clock. The defaults below, in the same
-- format, only serve rows written by hand.

create table tasks (
    id               text primary key not null,
    type             text not null,
    description      text not null default '',
    params           text not null default '{}',
    domain           text,
    drift_score      real not null default 0,
    status           text not null default 'created'
                     check (status in ('created', 'queued', 'running', 'retry',
                                       'completed', 'failed', 'cancelled')),
    result           text,
    error            text,
    created_at       text not null default (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at       text not null default (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    -- Execution: attempts since the task was last queued by create or run.
    attempts         integer not null default 0,
    max_attempts     integer not null default 3 check (max_attempts >= 1),
    timeout_seconds  real,
    -- A queued or retry task is claimable once run_at has passed.
    run_at           text not null default (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    started_at       text,
    finished_at      text,
    -- The worker that holds (or last held) the task; the token fences its writes.
    worker_id        text,
    lease_token      text,
    lease_expires_at text
) strict;

-- The task list: newest first, optionally by status.
create index tasks_created_idx on tasks (created_at desc, id desc);
create index tasks_status_created_idx on tasks (status, created_at desc, id desc);
-- The claim: only ready tasks are indexed, so finished ones never slow it down.
create index tasks_ready_idx on tasks (run_at, id) where status in ('queued', 'retry');
-- The rescue of expired leases.
create index tasks_lease_idx on tasks (lease_expires_at) where status = 'running';

-- Every status change of a task, appended by the triggers below.
create table task_events (
    seq         integer primary key autoincrement,
    task_id     text not null,
    at          text not null,
    kind        text not null,
    from_status text,
    to_status   text not null,
    attempt     integer not null,
    worker_id   text,
    error       text
) strict;
create index task_events_task_idx on task_events (task_id, seq);

-- Row-level triggers with the rules of the PostgreSQL ones. An event's time is the row's own
-- updated_at (created_at for an insert): every status change sets it from the store's clock,
-- so the trail and the row agree. Wake-ups are not sent from here: the store signals the
-- watchers of its own process after the statement.
create trigger tasks_inserted after insert on tasks
begin
    insert into task_events (task_id, at, kind, to_status, attempt)
    values (new.id, new.created_at, 'created', new.status, new.attempts);
end;

create trigger tasks_status_changed after update of status on tasks
when old.status <> new.status
begin
    insert into task_events (task_id, at, kind, from_status, to_status, attempt, worker_id, error)
    values (
        new.id,
        new.updated_at,
        case
            when new.status = 'running' then 'claimed'
            when new.status = 'queued' and old.status = 'running' then
                case when new.attempts < old.attempts then 'released' else 'rescued' end
            else new.status
        end,
        old.status,
        new.status,
        new.attempts,
        coalesce(new.worker_id, old.worker_id),
        case when new.status in ('failed', 'retry', 'queued') then new.error end
    );
end;

create table facts (
    id         text primary key not null,
    text       text not null,
    -- A JSON array of strings.
    tags       text not null default '[]' check (json_type(tags) = 'array'),
    -- A JSON object.
    meta_data  text not null default '{}' check (json_type(meta_data) = 'object'),
    created_at text not null default (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    updated_at text not null default (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z')
) strict;

-- The fact list: newest first. `q` and `tag` scan (no trigram or GIN index in SQLite): the
-- embedded store is meant for one process and modest data.
create index facts_created_idx on facts (created_at desc, id desc);
