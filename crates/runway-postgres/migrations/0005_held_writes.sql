-- The check that closes a write of the jobs a transaction holds locked: every one of them must
-- have been written. An exception aborts the transaction, so a COMMIT sent in the same round
-- trip rolls it back instead of keeping part of it.
CREATE FUNCTION runway_written(written bigint, expected bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
BEGIN
    IF written <> expected THEN
        RAISE EXCEPTION 'runway: % of % jobs this write held locked changed under it',
            expected - written, expected;
    END IF;
    RETURN written;
END $$;
