-- The W3C `traceparent` a task was created with (null without one): its executions log the
-- trace, and remote executors receive a child of it. SQLite keeps no task history table.

alter table tasks add column traceparent text;
