-- Each queue's oldest ready task, for the metrics' queue-age gauge: one short descent of this
-- index per queue at every scrape, however long the backlog (a scan of the ready set would
-- grow with it). Like tasks_ready_idx it holds ready tasks only, so finished tasks and the
-- history never enter it.
create index tasks_queue_ready_idx on tasks (queue, run_at) where status in ('queued', 'retry');
