-- Claims up to $2 ready tasks for worker $1 in one statement, higher priority first, then
-- start time, then arrival; rows another worker is claiming are skipped, not waited for. $6:
-- the queues this lane serves (null: all), $7: queues it leaves to other lanes, $8: the task
-- types taken (null: all); paused queues are skipped, and limited queues give no more than their
-- limit leaves. The statement is the function `seedcore_claim`, whose definition is
-- `claim_function.sql` beside this file (a function keeps its plan: see that file).
select * from seedcore_claim($1, $2, $3, $4, $5, $6, $7, $8)
