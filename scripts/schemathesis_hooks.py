"""Schemathesis hooks for scripts/schemathesis.sh.

The OpenAPI document states every bound, length, pattern, format and list of allowed values
that the validators enforce. A few checks depend on more than one value or on stored data and
cannot be written in JSON Schema: a cron expression that is well-formed and fires, ids that name
existing tasks, keys that name tasks of the same workflow, unique keys and no cycles. A
schema-valid request refused for one of those reasons alone is the documented behaviour, not a
failure; any other error in the same response keeps the failure.

The stateful phase also fills path parameters from earlier responses (a task's `workflow_id`
into `/workflows/{id}`), null ones included: a request whose path breaks the document's own
parameter schema was not schema-valid, so its refusal is not a failure either.
"""

import schemathesis

# Validation error types (the `type` of each item of a 422's `detail`) for rules that the
# document names in prose but cannot state as a schema.
UNSTATABLE = {
    "cursor_with_search",  # GET /facts: cursor and search together
    "cron_expression",  # a cron expression must parse and match a date to come
    "unknown_task",  # depends_on: ids of existing tasks
    "unknown_key",  # a workflow step's depends_on: keys of the same workflow
    "duplicate_key",  # workflow keys are unique
    "self_dependency",  # a workflow step may not depend on itself
    "cycle",  # a workflow's dependencies form no cycle
    "datetime_range",  # run_at: within ten years of now, either way
    "too_large",  # params, meta_data: a size in bytes of JSON
}


def _error_types(response):
    try:
        detail = response.json().get("detail")
    except Exception:
        return set()
    if not isinstance(detail, list):
        return set()
    return {item.get("type") for item in detail if isinstance(item, dict)}


def _breaks_a_path_parameter(case):
    values = case.path_parameters or {}
    for parameter in case.operation.path_parameters:
        if parameter.name in values and not parameter.is_valid(values[parameter.name]):
            return True
    return False


@schemathesis.hook
def filter_failure(ctx, failure, case, response):
    if failure.code != "ST202" or response.status_code != 422:
        return True
    if _breaks_a_path_parameter(case):
        return False
    types = _error_types(response)
    return not (types and types <= UNSTATABLE)
