-- steady_round commits a steady round (tam.SteadyRoundStore) as one
-- statement outside any explicit transaction: one round trip where BEGIN,
-- the token's INSERT, the device's UPDATE and COMMIT cost four. It
-- consumes the token first, as a transaction of the engine does (so two
-- sessions racing for one token lock rows in the same order), then
-- records last_seen when the device row still holds what the session
-- read. Returns 1 when both were written, 2 when the token was already
-- used, 3 when the token epoch is no longer p_epoch; when the device row
-- changed it raises TE001, which undoes the token's INSERT, and the caller
-- commits the round in a transaction instead. Its commit does not wait for
-- the WAL flush (synchronous_commit off for this statement's transaction):
-- losing it costs a retry (docs/operations.md, "Durability").

CREATE FUNCTION steady_round(p_token BYTEA, p_expires BIGINT, p_epoch BIGINT, p_kid BYTEA, p_seen BIGINT,
		p_alg BIGINT, p_numbering TEXT, p_status TEXT, p_last_error TEXT, p_last_error_code BIGINT) RETURNS INTEGER
	LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	PERFORM set_config('synchronous_commit', 'off', true);
	IF NOT EXISTS (SELECT 1 FROM token_epoch WHERE id = 1 AND epoch = p_epoch) THEN
		RETURN 3;
	END IF;
	INSERT INTO used_tokens (token, expires_at) VALUES (p_token, p_expires) ON CONFLICT (token) DO NOTHING;
	IF NOT FOUND THEN
		RETURN 2;
	END IF;
	UPDATE devices SET last_seen = p_seen WHERE kid = p_kid AND alg = p_alg AND numbering = p_numbering
		AND status = p_status AND last_error = p_last_error AND last_error_code = p_last_error_code AND attestation <> '';
	IF NOT FOUND THEN
		RAISE EXCEPTION 'device row changed since it was read' USING ERRCODE = 'TE001';
	END IF;
	RETURN 1;
END
$$;
