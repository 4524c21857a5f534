-- The task statistics (`GET /api/v1/stats/tasks`) read the tasks that finished in the last
-- minutes to a day. In the history, which holds up to millions of finished tasks, they are a
-- range of this index, and its pages are the newest (moves append).
create index task_history_finished_idx on task_history (finished_at);
--
-- The hot table `tasks` gets no such index: the finished tasks it holds are younger than
-- `archive_after` (five minutes by default), nearly all inside any window worth charting, so
-- the statistics read them whole (a sequential scan of a table housekeeping keeps small), while
-- an index on `finished_at` would add one entry to every completion, the write this table
-- exists to keep fast. Were `archive_after` set to days, that read would grow with it.
