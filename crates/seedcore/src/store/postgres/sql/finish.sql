-- Records how a batch of attempts ended, each only while its lease token is current: the
-- function `seedcore_finish` (migration 20261210000001_trail_by_claim_and_finish), which also
-- writes the outcomes' event rows and counter deltas. Returns the recorded leases.
select id, token from seedcore_finish($1, $2, $3, $4, $5, $6)
