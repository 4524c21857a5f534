-- Worker processes register here so operators can see who is running tasks.
create table workers (
    id                    text primary key,
    host                  text not null,
    pid                   integer not null,
    version               text not null,
    concurrency           integer not null,
    escalated_concurrency integer not null,
    lease_seconds         double precision not null,
    started_at            timestamptz not null default now(),
    last_seen_at          timestamptz not null default now(),
    stopped_at            timestamptz
);

create index workers_started_idx on workers (started_at desc);
