-- How far along a task's current attempt is, as its worker last reported it (the pull API's
-- task heartbeat, `progress` from 0 to 1); null until a report, and again when the next
-- attempt starts: the claim clears it. SQLite keeps no task history table.

alter table tasks add column progress real;
