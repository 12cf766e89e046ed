package redistest

// Redis50Commands are config lines (for Options.Extra and StartCluster)
// that leave a Redis 7.0 server only the top-level commands Redis 5.0 has:
// every command 7.0.15 added since 5.0 (its COMMAND DOCS "since") is
// renamed to "", so neither a client nor a Lua script can call it. The
// client handshake then goes as with 5.0 too: HELLO is unknown, and
// go-redis falls back to RESP2 and AUTH. Options added to older commands
// (ZADD GT, SET KEEPTTL, ...) and subcommands (CLIENT TRACKING, CLUSTER
// SHARDS) stay: no config line removes them.
var Redis50Commands = renamed(
	// 6.0
	"ACL", "BITFIELD_RO", "HELLO", "LPOS",
	// 6.2
	"BLMOVE", "COPY", "FAILOVER", "GEOSEARCH", "GEOSEARCHSTORE", "GETDEL", "GETEX", "HRANDFIELD",
	"LMOVE", "RESET", "SMISMEMBER", "XAUTOCLAIM", "ZDIFF", "ZDIFFSTORE", "ZINTER", "ZMSCORE",
	"ZRANDMEMBER", "ZRANGESTORE", "ZUNION",
	// 7.0
	"BLMPOP", "BZMPOP", "EVAL_RO", "EVALSHA_RO", "EXPIRETIME", "FCALL", "FCALL_RO", "FUNCTION",
	"LCS", "LMPOP", "PEXPIRETIME", "SINTERCARD", "SORT_RO", "SPUBLISH", "SSUBSCRIBE",
	"SUNSUBSCRIBE", "ZINTERCARD", "ZMPOP",
)

func renamed(cmds ...string) []string {
	out := make([]string, len(cmds))
	for i, c := range cmds {
		out[i] = "rename-command " + c + ` ""`
	}
	return out
}
