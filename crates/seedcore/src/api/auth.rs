//! The API's side of authentication: the OpenAPI document's bearer scheme and each
//! operation's scope, both read from [`ROUTE_ACCESS`](super::ROUTE_ACCESS).

use utoipa::openapi::{
    Components, OpenApi,
    path::Operation,
    security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
};

use crate::auth::{Access, DEFAULT_OPEN_ROUTES};

/// The name of the security scheme in the document.
const SCHEME: &str = "bearer";

/// The document with the bearer scheme declared and, on every operation that needs a token,
/// the scope it needs; a route open by default lists no requirement first (`{}`), so a
/// token is optional there unless the server closes it.
pub(super) fn secured(mut openapi: OpenApi) -> OpenApi {
    let scheme = HttpBuilder::new()
        .scheme(HttpAuthScheme::Bearer)
        .bearer_format("sc_<id>_<secret>")
        .description(Some(
            "An API token from `seedcore token create`. Needed once any token exists; \
             each operation names the scope it needs.",
        ))
        .build();
    openapi
        .components
        .get_or_insert_with(Components::new)
        .add_security_scheme(SCHEME, SecurityScheme::Http(scheme));
    for (path, item) in openapi.paths.paths.iter_mut() {
        let operations = [
            ("get", &mut item.get),
            ("post", &mut item.post),
            ("put", &mut item.put),
            ("patch", &mut item.patch),
            ("delete", &mut item.delete),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                declare(operation, method, path);
            }
        }
    }
    openapi
}

fn declare(operation: &mut Operation, method: &str, path: &str) {
    let access = super::ROUTE_ACCESS
        .iter()
        .find(|(m, p, _)| *m == method && *p == path)
        .map(|(_, _, access)| *access);
    if let Some(Access::Token(scope)) = access {
        let token = SecurityRequirement::new(SCHEME, [scope.as_str()]);
        operation.security = Some(if DEFAULT_OPEN_ROUTES.contains(&path) {
            vec![SecurityRequirement::default(), token]
        } else {
            vec![token]
        });
    }
}
