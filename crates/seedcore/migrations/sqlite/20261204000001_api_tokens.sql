-- API tokens: a client shows `sc_<id>_<secret>`; only the SHA-256 of the whole token is kept.
-- `id` is the public part, so a leaked token can be found here (and revoked) by its id.
-- Rows are never deleted: a revoked token stays listed, and once any token has existed the
-- API asks every caller for one. Scopes are a JSON array of names.
create table api_tokens (
    id           text primary key not null,
    name         text not null unique,
    role         text not null,
    scopes       text not null,
    secret_hash  blob not null,
    created_at   text not null,
    last_used_at text,
    expires_at   text,
    revoked_at   text
) strict;
