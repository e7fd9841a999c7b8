-- KEYS: record, attempts. ARGV: the attempt (JSON).
push_attempt(KEYS[1], KEYS[2], ARGV[1])
return 1
