-- Equality filters on params and tags (`params.p0 = 'v1'`) read the run ids straight from the
-- (key, value) index: with the run id in the index, SQLite no longer looks up every matching
-- row in the table just to learn which run it belongs to.
CREATE INDEX params_key_value_run ON params (key, value, run_pk);
DROP INDEX params_key_value;
CREATE INDEX tags_key_value_run ON tags (key, value, run_pk);
DROP INDEX tags_key_value;
