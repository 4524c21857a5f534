//! The API's side of authentication: the OpenAPI document's bearer scheme, and each
//! operation's scope and refusals (401, 403, 429), all read from
//! [`ROUTE_ACCESS`](super::ROUTE_ACCESS).

use utoipa::openapi::{
    Components, ContentBuilder, OpenApi, Ref, RefOr, ResponseBuilder,
    header::{Header, HeaderBuilder},
    path::Operation,
    schema::{Object, Type},
    security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
};

use crate::auth::{Access, DEFAULT_OPEN_ROUTES};

/// The name of the security scheme in the document.
const SCHEME: &str = "bearer";

/// The refusals of an operation that needs a token, declared once in the components:
/// status, name, description, and the header that says what to do next.
const REFUSALS: [(&str, &str, &str, &str, Type); 3] = [
    (
        "401",
        "Unauthorized",
        "No token, or one that is unknown, revoked or expired",
        "WWW-Authenticate",
        Type::String,
    ),
    (
        "403",
        "Forbidden",
        "The token lacks the scope this operation needs",
        "WWW-Authenticate",
        Type::String,
    ),
    (
        "429",
        "TooManyRequests",
        "The token is over its rate limit",
        "Retry-After",
        Type::Integer,
    ),
];

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
    let components = openapi.components.get_or_insert_with(Components::new);
    components.add_security_scheme(SCHEME, SecurityScheme::Http(scheme));
    for (_, name, description, header, kind) in REFUSALS {
        components
            .responses
            .insert(name.into(), refusal(description, header, kind));
    }
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
    if let Some(Access::Token(scope) | Access::Strict(scope)) = access {
        let token = SecurityRequirement::new(SCHEME, [scope.as_str()]);
        operation.security = Some(if DEFAULT_OPEN_ROUTES.contains(&path) {
            vec![SecurityRequirement::default(), token]
        } else {
            vec![token]
        });
        for (status, name, _, _, _) in REFUSALS {
            let shared = Ref::new(format!("#/components/responses/{name}"));
            operation
                .responses
                .responses
                .insert(status.into(), RefOr::Ref(shared));
        }
    }
}

/// A refusal in the API's error envelope, with the header that says what to do next.
fn refusal(description: &str, header: &str, kind: Type) -> RefOr<utoipa::openapi::Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorBody")))
        .build();
    let header_value: Header = HeaderBuilder::new().schema(Object::with_type(kind)).build();
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content("application/json", content)
            .header(header, header_value)
            .build(),
    )
}
