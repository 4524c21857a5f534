//! The task and fact types the API returns and the store keeps, and the task state machine.

pub mod fact;
pub mod id;
pub mod task;

pub use fact::{Fact, FactPatch, NewFact};
pub use id::IdRef;
pub use task::{NewTask, Task, TaskEvent, TaskStatus};
