//! The task, workflow, fact and worker types the API returns and the store keeps, and the task state
//! machine.

pub mod actor;
pub mod cursor;
pub mod fact;
pub mod id;
pub mod pull_worker;
pub mod queue;
pub mod schedule;
pub mod task;
pub mod transition;
pub mod worker;
pub mod workflow;

pub use actor::Actor;
pub use cursor::Cursor;
pub use fact::{Fact, FactPatch, NewFact};
pub use id::IdRef;
pub use pull_worker::{PullWorker, WorkerCommand};
pub use queue::QueueInfo;
pub use schedule::{
    MisfirePolicy, NewSchedule, Schedule, SchedulePatch, TaskTemplate, TemplatePatch,
};
pub use task::{NewTask, Task, TaskEvent, TaskStatus};
pub use transition::{Event, Refusal, transition};
pub use worker::{Worker, WorkerState};
pub use workflow::{
    NewWorkflow, Workflow, WorkflowPlan, WorkflowStatus, WorkflowStep, WorkflowSummary,
};
