-- A lease token exists only while its task runs: every statement that moves a task out of
-- `running` clears it. The statements that finish, renew or release an attempt therefore
-- find it by id and token alone; asking for `status = 'running'` as well let the planner,
-- with statistics taken when few tasks ran, walk every entry of the status index for
-- `running` (dead ones included) on each batch, where a primary-key lookup per task is right.
-- NOT VALID: the rows written so far keep the rule by construction, and validating would
-- read the whole table under lock; every write from now on is checked.
alter table tasks add constraint tasks_lease_only_while_running
    check (lease_token is null or status = 'running') not valid;
