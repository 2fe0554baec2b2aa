DROP INDEX api_tokens_expires_at_idx;
DROP TABLE login_throttle;
