-- The task list's children filter (`parent=`) and its order by last update, over millions of
-- finished tasks.
--
-- Children: only tasks with parents enter these indexes (the list's condition repeats the
-- predicate so the planner can use them); without them a task's detail page scans the whole
-- history to find its children.
create index tasks_children_idx on tasks using gin (depends_on) where depends_on <> '{}';
create index task_history_children_idx on task_history using gin (depends_on)
    where depends_on <> '{}';
-- Last update: history rows never change, so this index costs nothing after the move; the hot
-- table is small enough to sort, and the two are merged as for the creation order.
create index task_history_updated_idx on task_history (updated_at desc, id desc);
