-- A queue's concurrency limit: at most this many of its tasks are `running` at any moment,
-- across every worker (null: no limit). The claim enforces it.
alter table queues add column concurrency integer check (concurrency >= 1);
