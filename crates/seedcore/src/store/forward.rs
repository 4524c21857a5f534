//! `impl Store` for a backend laid out as both are: every data method forwards to the
//! function of the same job in the backend's module of that name (`tasks::create`,
//! `claims::finish`, `schedules::fire_due`, …). The table of which module answers which
//! method is written here once; each backend adds what it does its own way (its name, ping,
//! watch, close, backup, and the methods only it has).

/// Implements [`Store`](crate::store::Store) for `$store`: the items in braces, then every
/// method below, each forwarded to the function that holds its logic in the calling backend's
/// modules. Names resolve where the macro is called: the backend's `mod.rs`, which imports
/// its modules and the types the trait speaks in.
macro_rules! impl_store {
    ($store:ty { $($own:tt)* }) => {
        #[async_trait]
        impl Store for $store {
            $($own)*

            async fn migrate(&self) -> StoreResult<MigrationReport> {
                schema::migrate(self).await
            }

            async fn verify(&self) -> StoreResult<Vec<String>> {
                schema::verify(self).await
            }

            async fn create_task(&self, task: NewTask) -> StoreResult<Task> {
                tasks::create(self, task).await
            }

            async fn create_tasks(&self, tasks: Vec<NewTask>) -> StoreResult<Vec<Task>> {
                tasks::create_many(self, tasks).await
            }

            async fn list_queues(&self) -> StoreResult<Vec<QueueInfo>> {
                queues::list(self).await
            }

            async fn set_queue_paused(&self, name: &str, paused: bool) -> StoreResult<QueueInfo> {
                queues::set_paused(self, name, paused).await
            }

            async fn set_queue_concurrency(
                &self,
                name: &str,
                concurrency: Option<i32>,
            ) -> StoreResult<QueueInfo> {
                queues::set_concurrency(self, name, concurrency).await
            }

            async fn oldest_ready(
                &self,
                names: &[String],
            ) -> StoreResult<Vec<(String, DateTime<Utc>)>> {
                queues::oldest_ready(self, names).await
            }

            async fn resolve_task(&self, id: &IdRef) -> StoreResult<Uuid> {
                tasks::resolve(self, id).await
            }

            async fn get_task(&self, id: Uuid) -> StoreResult<Task> {
                tasks::get(self, id).await
            }

            async fn list_tasks(&self, query: &TaskQuery) -> StoreResult<TaskPage> {
                tasks::list(self, query).await
            }

            async fn run_task(&self, id: Uuid, actor: &Actor) -> StoreResult<Task> {
                tasks::run(self, id, actor).await
            }

            async fn cancel_task(&self, id: Uuid, actor: &Actor) -> StoreResult<Task> {
                tasks::cancel(self, id, actor).await
            }

            async fn task_events(&self, id: Uuid) -> StoreResult<Vec<TaskEvent>> {
                tasks::events(self, id).await
            }

            async fn get_tasks(&self, ids: &[Uuid]) -> StoreResult<Vec<Task>> {
                tasks::get_many(self, ids).await
            }

            async fn task_stats(
                &self,
                query: &crate::store::StatsQuery,
            ) -> StoreResult<crate::store::TaskStats> {
                stats::task_stats(self, query).await
            }

            async fn create_workflow(&self, plan: WorkflowPlan) -> StoreResult<Workflow> {
                workflows::create(self, plan).await
            }

            async fn get_workflow(&self, id: Uuid) -> StoreResult<Workflow> {
                workflows::get(self, id).await
            }

            async fn list_workflows(
                &self,
                limit: i64,
                offset: i64,
            ) -> StoreResult<Page<WorkflowSummary>> {
                workflows::list(self, limit, offset).await
            }

            async fn cancel_workflow(&self, id: Uuid, actor: &Actor) -> StoreResult<Workflow> {
                workflows::cancel(self, id, actor).await
            }

            async fn claim_tasks(&self, claim: &Claim) -> StoreResult<Vec<ClaimedTask>> {
                claims::claim(self, claim).await
            }

            async fn finish_attempts(&self, batch: &[(Lease, Outcome)]) -> StoreResult<Vec<Lease>> {
                claims::finish(self, batch).await
            }

            async fn renew_leases(
                &self,
                held: &[Lease],
                lease: Duration,
            ) -> StoreResult<Vec<Lease>> {
                claims::renew(self, held, lease).await
            }

            async fn renew_reporting(
                &self,
                held: Lease,
                lease: Duration,
                progress: f64,
            ) -> StoreResult<bool> {
                claims::renew_reporting(self, held, lease, progress).await
            }

            async fn release(&self, held: &[Lease]) -> StoreResult<u64> {
                claims::release(self, held).await
            }

            async fn rescue_expired_tasks(&self) -> StoreResult<Vec<Rescued>> {
                claims::rescue_expired(self).await
            }

            async fn register_worker(&self, worker: &Worker) -> StoreResult<()> {
                workers::register(self, worker).await
            }

            async fn worker_seen(&self, id: &str) -> StoreResult<()> {
                workers::seen(self, id).await
            }

            async fn worker_stopped(&self, id: &str) -> StoreResult<()> {
                workers::stopped(self, id).await
            }

            async fn register_pull_worker(
                &self,
                worker: &Worker,
                pull: &crate::model::PullWorker,
            ) -> StoreResult<()> {
                pull::register(self, worker, pull).await
            }

            async fn pull_worker(&self, id: &str) -> StoreResult<crate::model::PullWorker> {
                pull::get(self, id).await
            }

            async fn pull_worker_seen(&self, id: &str) -> StoreResult<crate::model::WorkerCommand> {
                pull::seen(self, id).await
            }

            async fn set_pull_worker_state(
                &self,
                id: &str,
                state: crate::model::WorkerCommand,
            ) -> StoreResult<crate::model::PullWorker> {
                pull::set_state(self, id, state).await
            }

            async fn finish_remembered(
                &self,
                batch: &[(Lease, Outcome)],
            ) -> StoreResult<Vec<Lease>> {
                pull::finish_remembered(self, batch).await
            }

            async fn finished_lease(
                &self,
                lease: Lease,
            ) -> StoreResult<Option<crate::model::TaskStatus>> {
                pull::finished_lease(self, lease).await
            }

            async fn running_by_queue(
                &self,
                worker_id: &str,
                queues: &[String],
            ) -> StoreResult<Vec<(String, i64)>> {
                pull::running_by_queue(self, worker_id, queues).await
            }

            async fn list_workers(&self) -> StoreResult<Vec<Worker>> {
                workers::list(self).await
            }

            async fn import_facts(&self, facts: &[Fact]) -> StoreResult<u64> {
                import::facts(self, facts).await
            }

            async fn import_tasks(&self, tasks: &[LegacyTask]) -> StoreResult<u64> {
                import::tasks(self, tasks).await
            }

            async fn stored_ids(&self, kind: RecordKind, ids: &[Uuid]) -> StoreResult<Vec<Uuid>> {
                import::stored_ids(self, kind, ids).await
            }

            async fn create_fact(&self, fact: NewFact) -> StoreResult<Fact> {
                facts::create(self, fact).await
            }

            async fn resolve_fact(&self, id: &IdRef) -> StoreResult<Uuid> {
                facts::resolve(self, id).await
            }

            async fn get_fact(&self, id: Uuid) -> StoreResult<Fact> {
                facts::get(self, id).await
            }

            async fn list_facts(&self, query: &FactQuery) -> StoreResult<Page<Fact>> {
                fact_search::search(self, query)
                    .await
                    .map(FactPage::into_page)
            }

            async fn search_facts(&self, query: &FactQuery) -> StoreResult<FactPage> {
                fact_search::search(self, query).await
            }

            async fn create_facts(&self, facts: Vec<NewFact>) -> StoreResult<Vec<Fact>> {
                facts::create_many(self, facts).await
            }

            async fn tag_counts(
                &self,
                prefix: Option<&str>,
                limit: i64,
            ) -> StoreResult<Vec<TagCount>> {
                facts::tag_counts(self, prefix, limit).await
            }

            async fn prune_finished(&self, cutoff: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
                retention::prune(self, cutoff, limit).await
            }

            async fn update_fact(&self, id: Uuid, patch: FactPatch) -> StoreResult<Fact> {
                facts::update(self, id, patch).await
            }

            async fn delete_fact(&self, id: Uuid) -> StoreResult<()> {
                facts::delete(self, id).await
            }

            async fn create_schedule(&self, schedule: NewSchedule) -> StoreResult<Schedule> {
                schedules::create(self, schedule).await
            }

            async fn get_schedule(&self, id: Uuid) -> StoreResult<Schedule> {
                schedules::get(self, id).await
            }

            async fn list_schedules(&self, limit: i64, offset: i64) -> StoreResult<Page<Schedule>> {
                schedules::list(self, limit, offset).await
            }

            async fn update_schedule(
                &self,
                id: Uuid,
                patch: SchedulePatch,
            ) -> StoreResult<Schedule> {
                schedules::update(self, id, patch).await
            }

            async fn delete_schedule(&self, id: Uuid) -> StoreResult<()> {
                schedules::delete(self, id).await
            }

            async fn fire_due_schedules(&self, limit: i64) -> StoreResult<Firing> {
                schedules::fire_due(self, limit).await
            }

            async fn trigger_schedule(&self, id: Uuid, actor: Actor) -> StoreResult<Task> {
                schedules::trigger(self, id, actor).await
            }

            async fn schedule_fires(
                &self,
                id: Uuid,
                limit: i64,
            ) -> StoreResult<Vec<ScheduleFire>> {
                schedules::list_fires(self, id, limit).await
            }

            async fn create_token(&self, token: NewToken) -> StoreResult<ApiToken> {
                tokens::create(self, token).await
            }

            async fn list_tokens(&self) -> StoreResult<Vec<ApiToken>> {
                tokens::list(self).await
            }

            async fn find_token(&self, id: &str) -> StoreResult<Option<StoredToken>> {
                tokens::find(self, id).await
            }

            async fn revoke_token(&self, id_or_name: &str) -> StoreResult<ApiToken> {
                tokens::revoke(self, id_or_name).await
            }

            async fn touch_token(&self, id: &str) -> StoreResult<()> {
                tokens::touch(self, id).await
            }

            async fn any_tokens(&self) -> StoreResult<bool> {
                tokens::any(self).await
            }

            async fn events_after(&self, after: i64, limit: i64) -> StoreResult<Vec<TaskChange>> {
                events::after(self, after, limit).await
            }

            async fn last_event_seq(&self) -> StoreResult<i64> {
                events::last_seq(self).await
            }

            async fn delete_task(&self, id: Uuid) -> StoreResult<()> {
                actions::delete_task(self, id).await
            }

            async fn create_action(
                &self,
                action: NewAction,
                owner: &str,
                lease: Duration,
            ) -> StoreResult<TaskAction> {
                actions::create(self, action, owner, lease).await
            }

            async fn get_action(&self, id: Uuid) -> StoreResult<TaskAction> {
                actions::get(self, id).await
            }

            async fn list_actions(&self, limit: i64) -> StoreResult<Vec<TaskAction>> {
                actions::list(self, limit).await
            }

            async fn adopt_action(
                &self,
                owner: &str,
                lease: Duration,
            ) -> StoreResult<Option<TaskAction>> {
                actions::adopt(self, owner, lease).await
            }

            async fn action_batch(
                &self,
                id: Uuid,
                owner: &str,
                lease: Duration,
                batch: i64,
            ) -> StoreResult<Option<TaskAction>> {
                actions::batch(self, id, owner, lease, batch).await
            }

            async fn fail_action(&self, id: Uuid, owner: &str, error: &str) -> StoreResult<()> {
                actions::fail(self, id, owner, error).await
            }
        }
    };
}

pub(crate) use impl_store;
