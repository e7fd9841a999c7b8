-- KEYS: record, lease. ARGV: lease token.
end_run(KEYS[1], KEYS[2], ARGV[1])
return 1
