-- Each task's status before adoption, and why it changed, for its `adopted` event.
create temporary table adopted_tasks (
    id   uuid primary key,
    was  text not null,
    note text
) on commit drop
