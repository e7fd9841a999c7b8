-- A resend checked against the send limits and counted (lua/shared/limits.lua). KEYS and ARGV: the limits'.
return check_and_count(KEYS, ARGV)
