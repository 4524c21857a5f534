alter table tasks
    alter column status set default 'created',
    alter column status set not null,
    add constraint tasks_status_check
        check (status in ('created', 'queued', 'running', 'retry',
                          'completed', 'failed', 'cancelled'))
