-- API tokens: a client shows `sc_<id>_<secret>`; only the SHA-256 of the whole token is kept.
-- `id` is the public part, so a leaked token can be found here (and revoked) by its id.
-- Rows are never deleted: a revoked token stays listed, and once any token has existed the
-- API asks every caller for one.
create table api_tokens (
    id           text primary key,
    name         text not null unique,
    role         text not null,
    scopes       text[] not null,
    secret_hash  bytea not null,
    created_at   timestamptz not null default now(),
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);
