//! Workflows: a set of tasks created together, each with a name (its key) and the keys it
//! depends on, and the overall status read from its tasks.
//!
//! Invariants: keys are unique within a workflow, every dependency names a key of the same
//! workflow, and the dependencies form no cycle ([`NewWorkflow::plan`] refuses anything else,
//! before a row is written). Tasks are created parents first, so a task's parents always exist.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{NewTask, Task, TaskStatus};
use crate::validate::FieldError;

/// One task of a workflow request: the task, its key, and the keys it depends on.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowStep {
    /// The task's name in the workflow, unique within it.
    pub key: String,
    /// The keys of the steps that must finish first.
    pub depends_on: Vec<String>,
    /// The task (its own `depends_on` and `workflow` are filled in by the plan).
    pub task: NewTask,
}

/// A workflow to create, after each step was validated on its own.
#[derive(Clone, Debug, PartialEq)]
pub struct NewWorkflow {
    /// A name for people; empty when none was given.
    pub name: String,
    /// The steps, in the order of the request.
    pub steps: Vec<WorkflowStep>,
}

/// A workflow ready to store: its id and its tasks, parents before children.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkflowPlan {
    /// The new workflow's id.
    pub id: Uuid,
    /// The workflow's name.
    pub name: String,
    /// Every task, ordered so that each comes after all of its parents.
    pub tasks: Vec<NewTask>,
}

impl NewWorkflow {
    /// Checks keys and edges and orders the tasks parents first. Errors are located at
    /// `["tasks", index, field]`; a cycle is reported on every step that is part of one.
    pub fn plan(self) -> Result<WorkflowPlan, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut index_of = HashMap::new();
        for (i, step) in self.steps.iter().enumerate() {
            if *index_of.entry(step.key.as_str()).or_insert(i) != i {
                errors.push(step_error(
                    i,
                    "key",
                    "duplicate_key",
                    "This key is already used by another task of the workflow",
                ));
            }
        }
        let mut parents: Vec<Vec<usize>> = vec![Vec::new(); self.steps.len()];
        for (i, step) in self.steps.iter().enumerate() {
            for (j, key) in step.depends_on.iter().enumerate() {
                match index_of.get(key.as_str()) {
                    Some(&p) if p == i => errors.push(edge_error(
                        i,
                        j,
                        "self_dependency",
                        "A task cannot depend on itself",
                    )),
                    Some(&p) => parents[i].push(p),
                    None => errors.push(edge_error(
                        i,
                        j,
                        "unknown_key",
                        &format!("No task of the workflow has the key '{key}'"),
                    )),
                }
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        let order = match topological_order(&parents) {
            Ok(order) => order,
            Err(cyclic) => {
                return Err(cyclic
                    .into_iter()
                    .map(|i| {
                        step_error(
                            i,
                            "depends_on",
                            "cycle",
                            "The dependencies form a cycle through this task",
                        )
                    })
                    .collect());
            }
        };
        Ok(self.into_plan(&order, &parents))
    }

    fn into_plan(self, order: &[usize], parents: &[Vec<usize>]) -> WorkflowPlan {
        let id = Uuid::new_v4();
        let ids: Vec<Uuid> = self.steps.iter().map(|s| s.task.id).collect();
        let mut steps: Vec<Option<WorkflowStep>> = self.steps.into_iter().map(Some).collect();
        let tasks = order
            .iter()
            .map(|&i| {
                let step = steps[i].take().expect("each step once");
                let mut task = step.task;
                task.depends_on = parents[i].iter().map(|&p| ids[p]).collect();
                task.depends_on.dedup();
                // A workflow runs as soon as it is created: its roots are queued.
                task.run_immediately = true;
                task.workflow = Some((id, step.key));
                task
            })
            .collect();
        WorkflowPlan {
            id,
            name: self.name,
            tasks,
        }
    }
}

fn step_error(index: usize, field: &str, kind: &'static str, msg: &str) -> FieldError {
    FieldError::new(vec!["tasks".into(), index.into(), field.into()], kind, msg)
}

fn edge_error(index: usize, position: usize, kind: &'static str, msg: &str) -> FieldError {
    FieldError::new(
        vec![
            "tasks".into(),
            index.into(),
            "depends_on".into(),
            position.into(),
        ],
        kind,
        msg,
    )
}

/// Kahn's algorithm over `parents[i]` (the steps `i` depends on): every step after its
/// parents, in request order where free. Err holds the steps on or behind a cycle that no
/// order can place, narrowed to those on a cycle.
fn topological_order(parents: &[Vec<usize>]) -> Result<Vec<usize>, Vec<usize>> {
    let n = parents.len();
    let mut children = vec![Vec::new(); n];
    let mut waiting: Vec<usize> = parents.iter().map(Vec::len).collect();
    for (child, ps) in parents.iter().enumerate() {
        for &p in ps {
            children[p].push(child);
        }
    }
    let mut ready: std::collections::BTreeSet<usize> =
        (0..n).filter(|&i| waiting[i] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(i) = ready.pop_first() {
        order.push(i);
        for &c in &children[i] {
            waiting[c] -= 1;
            if waiting[c] == 0 {
                ready.insert(c);
            }
        }
    }
    if order.len() == n {
        return Ok(order);
    }
    Err(on_cycles(parents, &waiting))
}

/// Of the steps left unplaced, those that can reach themselves through their parents (the rest
/// merely depend on a cycle).
fn on_cycles(parents: &[Vec<usize>], waiting: &[usize]) -> Vec<usize> {
    let left: Vec<usize> = (0..parents.len()).filter(|&i| waiting[i] > 0).collect();
    left.iter()
        .copied()
        .filter(|&start| {
            let mut seen = vec![false; parents.len()];
            let mut stack = parents[start].clone();
            while let Some(i) = stack.pop() {
                if i == start {
                    return true;
                }
                if !std::mem::replace(&mut seen[i], true) {
                    stack.extend(parents[i].iter().copied());
                }
            }
            false
        })
        .collect()
}

/// Where a workflow stands, from its tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowStatus {
    /// Some task is not final yet.
    Running,
    /// Every task completed.
    Completed,
    /// Every task is final and at least one failed.
    Failed,
    /// Every task is final, none failed, and at least one was cancelled.
    Cancelled,
}

impl WorkflowStatus {
    /// The status of a workflow whose tasks are in these statuses.
    pub fn of(statuses: impl IntoIterator<Item = TaskStatus>) -> WorkflowStatus {
        let (mut failed, mut cancelled) = (false, false);
        for status in statuses {
            match status {
                TaskStatus::Completed => {}
                TaskStatus::Failed => failed = true,
                TaskStatus::Cancelled => cancelled = true,
                _ => return WorkflowStatus::Running,
            }
        }
        match (failed, cancelled) {
            (true, _) => WorkflowStatus::Failed,
            (false, true) => WorkflowStatus::Cancelled,
            (false, false) => WorkflowStatus::Completed,
        }
    }
}

/// A workflow as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct Workflow {
    /// Assigned when the workflow was created.
    pub id: Uuid,
    /// The name it was given; empty when none.
    pub name: String,
    /// Read from its tasks' statuses.
    pub status: WorkflowStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its tasks per status (statuses with none are left out).
    pub counts: BTreeMap<String, i64>,
    /// Its tasks, parents before children; each carries its `workflow_key`.
    pub tasks: Vec<Task>,
}

impl Workflow {
    /// The view of a stored workflow and its tasks (in creation order).
    pub fn new(id: Uuid, name: String, created_at: DateTime<Utc>, tasks: Vec<Task>) -> Workflow {
        let mut counts = BTreeMap::new();
        for task in &tasks {
            *counts.entry(task.status.as_str().to_string()).or_insert(0) += 1;
        }
        Workflow {
            id,
            name,
            status: WorkflowStatus::of(tasks.iter().map(|t| t.status)),
            created_at,
            counts,
            tasks,
        }
    }
}

/// A workflow in a list: its status and counts, without its tasks.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct WorkflowSummary {
    /// Assigned when the workflow was created.
    pub id: Uuid,
    /// The name it was given; empty when none.
    pub name: String,
    /// Read from its tasks' statuses.
    pub status: WorkflowStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its tasks per status (statuses with none are left out).
    pub counts: BTreeMap<String, i64>,
}

impl WorkflowSummary {
    /// The summary of a stored workflow whose tasks are counted per status (unknown statuses,
    /// which no store writes, count as unfinished).
    pub fn new(
        id: Uuid,
        name: String,
        created_at: DateTime<Utc>,
        counts: BTreeMap<String, i64>,
    ) -> WorkflowSummary {
        let statuses = counts
            .keys()
            .map(|s| TaskStatus::parse(s).unwrap_or(TaskStatus::Running));
        WorkflowSummary {
            id,
            name,
            status: WorkflowStatus::of(statuses),
            created_at,
            counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(key: &str, depends_on: &[&str]) -> WorkflowStep {
        WorkflowStep {
            key: key.into(),
            depends_on: depends_on.iter().map(|k| k.to_string()).collect(),
            task: NewTask::of_type("noop"),
        }
    }

    fn workflow(steps: Vec<WorkflowStep>) -> NewWorkflow {
        NewWorkflow {
            name: "w".into(),
            steps,
        }
    }

    fn kinds(errors: Vec<FieldError>) -> Vec<(String, &'static str)> {
        errors
            .into_iter()
            .map(|e| {
                let loc: Vec<String> = e.loc.iter().map(|p| p.to_string()).collect();
                (loc.join("."), e.kind)
            })
            .collect()
    }

    #[test]
    fn a_diamond_is_planned_parents_first_with_ids_wired() {
        let plan = workflow(vec![
            step("join", &["left", "right"]),
            step("left", &["start"]),
            step("right", &["start"]),
            step("start", &[]),
        ])
        .plan()
        .unwrap();
        let keys: Vec<&str> = plan
            .tasks
            .iter()
            .map(|t| t.workflow.as_ref().unwrap().1.as_str())
            .collect();
        assert_eq!(keys, vec!["start", "left", "right", "join"]);
        let id = |key: &str| plan.tasks[keys.iter().position(|k| *k == key).unwrap()].id;
        assert_eq!(plan.tasks[3].depends_on, vec![id("left"), id("right")]);
        assert_eq!(plan.tasks[1].depends_on, vec![id("start")]);
        assert!(plan.tasks.iter().all(|t| t.run_immediately));
        assert!(
            plan.tasks
                .iter()
                .all(|t| t.workflow.as_ref().unwrap().0 == plan.id)
        );
    }

    #[test]
    fn a_cycle_is_reported_on_each_task_in_it_but_not_on_those_behind_it() {
        let errors = workflow(vec![
            step("a", &["c"]),
            step("b", &["a"]),
            step("c", &["b"]),
            step("after", &["c"]),
            step("free", &[]),
        ])
        .plan()
        .unwrap_err();
        assert_eq!(
            kinds(errors),
            vec![
                ("\"tasks\".0.\"depends_on\"".into(), "cycle"),
                ("\"tasks\".1.\"depends_on\"".into(), "cycle"),
                ("\"tasks\".2.\"depends_on\"".into(), "cycle"),
            ]
        );
    }

    #[test]
    fn duplicate_keys_unknown_keys_and_self_edges_are_each_named() {
        let errors = workflow(vec![
            step("a", &["a"]),
            step("a", &[]),
            step("b", &["nope"]),
        ])
        .plan()
        .unwrap_err();
        let found: Vec<&'static str> = kinds(errors).into_iter().map(|(_, k)| k).collect();
        assert_eq!(
            found,
            vec!["duplicate_key", "self_dependency", "unknown_key"]
        );
    }

    #[test]
    fn a_workflow_is_running_until_every_task_is_final() {
        use TaskStatus::*;
        assert_eq!(
            WorkflowStatus::of([Completed, Blocked]),
            WorkflowStatus::Running
        );
        assert_eq!(
            WorkflowStatus::of([Completed, Completed]),
            WorkflowStatus::Completed
        );
        assert_eq!(
            WorkflowStatus::of([Failed, Cancelled]),
            WorkflowStatus::Failed
        );
        assert_eq!(
            WorkflowStatus::of([Completed, Cancelled]),
            WorkflowStatus::Cancelled
        );
    }
}
