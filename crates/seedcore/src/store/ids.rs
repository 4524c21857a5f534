//! Resolving an id reference (an exact id, or a prefix of one) to the one row it names.
//!
//! A prefix names the range of ids that start with it; the backend reads at most two ids in
//! that range, and the answer is decided here: none is NotFound, two are AmbiguousPrefix.

use std::future::Future;

use uuid::Uuid;

use super::{StoreError, StoreResult};
use crate::model::IdRef;

/// The one id `id` names; `ids_between(low, high)` reads up to two stored ids in that range.
pub(crate) async fn resolve<Fut>(
    id: &IdRef,
    ids_between: impl FnOnce(Uuid, Uuid) -> Fut,
) -> StoreResult<Uuid>
where
    Fut: Future<Output = StoreResult<Vec<Uuid>>>,
{
    let (low, high) = match id {
        IdRef::Exact(id) => return Ok(*id),
        IdRef::Prefix { range: None, .. } => return Err(StoreError::NotFound),
        IdRef::Prefix {
            range: Some(range), ..
        } => *range,
    };
    match ids_between(low, high).await?.as_slice() {
        [] => Err(StoreError::NotFound),
        [one] => Ok(*one),
        _ => Err(StoreError::AmbiguousPrefix(id.as_sent())),
    }
}
