//! Runs bulk actions in the background of a serving process: the ones it accepted, and any
//! left running by a process that stopped.
//!
//! Each action is driven batch after batch by [`Store::action_batch`], which commits the
//! changes with the action's progress and renews the action's lease for this process (its
//! `owner` id, new for every process). A process that stops or crashes leaves its actions
//! with a lease that expires; every serving process looks for such actions every half lease
//! (and once as it starts) and takes one over with [`Store::adopt_action`], which hands it to
//! one process only (`for update skip locked` on PostgreSQL). A process that lost the lease
//! (it stalled past it and another took over) finds so at its next batch and stops, having
//! changed nothing.
//!
//! [`Store::action_batch`]: crate::store::Store::action_batch
//! [`Store::adopt_action`]: crate::store::Store::adopt_action

use std::{sync::Arc, time::Duration};

use uuid::Uuid;

use crate::store::{ActionState, DynStore, NewAction, StoreError, StoreResult, TaskAction};

/// How actions are run.
#[derive(Clone, Debug)]
pub struct ActionSettings {
    /// Tasks handled per transaction.
    pub batch: i64,
    /// How long an action stays with a process that stopped renewing it.
    pub lease: Duration,
}

impl Default for ActionSettings {
    fn default() -> Self {
        ActionSettings {
            batch: 1000,
            lease: Duration::from_secs(30),
        }
    }
}

/// Runs this process's actions; see the module docs.
pub struct ActionRunner {
    store: DynStore,
    settings: ActionSettings,
    /// This process's name as an action's owner.
    owner: String,
}

impl ActionRunner {
    /// A runner, looking for orphaned actions in the background when a runtime is at hand.
    pub fn start(store: DynStore, settings: ActionSettings) -> Arc<ActionRunner> {
        let runner = Arc::new(ActionRunner {
            store,
            settings,
            owner: format!("process:{}", Uuid::new_v4()),
        });
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(runner.clone().adopt_orphans());
        }
        runner
    }

    /// Stores the action and starts running it.
    pub async fn submit(self: &Arc<Self>, action: NewAction) -> StoreResult<TaskAction> {
        let stored = self
            .store
            .create_action(action, &self.owner, self.settings.lease)
            .await?;
        tokio::spawn(self.clone().drive(stored.id));
        Ok(stored)
    }

    async fn adopt_orphans(self: Arc<Self>) {
        let pause =
            (self.settings.lease / 2).clamp(Duration::from_millis(200), Duration::from_secs(10));
        loop {
            loop {
                match self
                    .store
                    .adopt_action(&self.owner, self.settings.lease)
                    .await
                {
                    Ok(Some(action)) => {
                        tracing::info!(action = %action.id, "resuming a bulk action left running");
                        tokio::spawn(self.clone().drive(action.id));
                    }
                    Ok(None) => break,
                    Err(err) => {
                        tracing::debug!(error = %err, "cannot look for bulk actions left running");
                        break;
                    }
                }
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Runs batches until the action is finished, failed, or taken over.
    async fn drive(self: Arc<Self>, id: Uuid) {
        let settings = &self.settings;
        loop {
            let step = self
                .store
                .action_batch(id, &self.owner, settings.lease, settings.batch)
                .await;
            match step {
                Ok(Some(action)) if action.state == ActionState::Running => {
                    // Let other work in between batches.
                    tokio::task::yield_now().await;
                }
                Ok(_) => return,
                Err(StoreError::Unavailable(_)) => {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(err) => {
                    tracing::error!(action = %id, error = %err, "bulk action failed");
                    let reason = err.to_string();
                    if let Err(err) = self.store.fail_action(id, &self.owner, &reason).await {
                        tracing::warn!(action = %id, error = %err, "cannot record a failed bulk action");
                    }
                    return;
                }
            }
        }
    }
}
