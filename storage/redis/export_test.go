package redis

// AsIfVersion returns c with which New checks the server version and picks
// the command variants as if the server had reported v: "5.0.0" runs the
// store on the commands of Redis 5.0 on any server.
func AsIfVersion(c Config, v string) Config {
	c.asIfVersion = v
	return c
}
