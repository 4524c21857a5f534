-- A task can be written already claimed at its creation, and the insert trigger steps aside
-- for the statement that does so.
--
-- When a process that serves the API also runs workers, and one of its lanes that would claim
-- a new task waits for work with a slot free, the single create writes that task `running`,
-- claimed by that worker with a new lease (unless its queue is paused or limited, or a ready
-- task of its queue of the same or a higher priority would be claimed first), and the worker
-- runs it at once: no claim statement, no wake-up, no wait for one. The statement (the batched
-- create's `INSERT_STARTED`) writes the trail the trigger and the claim would have written:
-- `created` (to `queued`, by its creator), then `claimed` (by the worker), and the counter
-- deltas; it sets the transaction-local `seedcore.trail` as the claim and the completion do,
-- and the trigger's `when` leaves out a statement made while it is set.
-- Every other insert is unchanged.

drop trigger tasks_inserted on tasks;
create trigger tasks_inserted after insert on tasks
    referencing new table as new_rows
    for each statement
    when (current_setting('seedcore.trail', true) is distinct from 'written')
    execute function seedcore_tasks_inserted();
