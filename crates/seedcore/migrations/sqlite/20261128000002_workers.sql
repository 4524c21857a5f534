-- Worker processes register here so operators can see who is running tasks.
create table workers (
    id                    text primary key not null,
    host                  text not null,
    pid                   integer not null,
    version               text not null,
    concurrency           integer not null,
    escalated_concurrency integer not null,
    lease_seconds         real not null,
    started_at            text not null default (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    last_seen_at          text not null default (strftime('%Y-%m-%dT%H:%M:%f', 'now') || '000Z'),
    stopped_at            text
) strict;

create index workers_started_idx on workers (started_at desc);
