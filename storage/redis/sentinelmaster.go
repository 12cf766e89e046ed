package redis

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/storage/redis/redisurl"
)

// noSentinelMaster explains a failed first PING through Sentinel when the sentinels that answer know no master of the URL's name: go-redis
// then reports "all sentinels specified in configuration are unreachable:
// redis: nil" (each nil a sentinel's empty answer), or, when some sentinel
// cannot be dialled, only its deadline. It asks every sentinel SENTINEL
// GET-MASTER-ADDR-BY-NAME itself, and one that answered for the names it
// does monitor (SENTINEL MASTERS) to put them in the error. It returns nil
// when the URL is not Sentinel's, when a sentinel knows the master (the
// failure is another one) or when none answers. The error holds no
// credential.
func noSentinelMaster(ctx context.Context, c Config, t redisurl.URL) error {
	if !t.Sentinel {
		return nil
	}
	tc, terr := c.tlsConfig(t.TLS)
	if terr != nil {
		return nil
	}
	// answer is one sentinel's: knows the master, knows none of the
	// name (with the names it monitors), or no answer.
	type answer struct {
		knows, none bool
		masters     []string
	}
	answers := make(chan answer, len(t.Addrs))
	for _, addr := range t.Addrs {
		go func() {
			sc := goredis.NewSentinelClient(&goredis.Options{
				Addr: addr, Username: t.SentinelUsername, Password: t.SentinelPassword,
				TLSConfig: tc, Dialer: dialer(c.DialTimeout, tc, nil), DisableIdentity: true,
				DialTimeout: c.DialTimeout, ReadTimeout: c.ReadTimeout, WriteTimeout: c.WriteTimeout,
				MaxRetries: -1,
			})
			defer sc.Close()
			var a answer
			_, err := sc.GetMasterAddrByName(ctx, t.MasterName).Result()
			switch {
			case errors.Is(err, goredis.Nil):
				a.none, a.masters = true, sentinelMasters(ctx, sc)
			case err == nil:
				a.knows = true
			}
			answers <- a
		}()
	}
	none, knows := 0, 0
	var masters []string
	for range t.Addrs {
		a := <-answers
		switch {
		case a.none:
			none++
			if masters == nil {
				masters = a.masters
			}
		case a.knows:
			knows++
		}
	}
	if none == 0 || knows > 0 {
		return nil
	}
	who := "the sentinels answered but know"
	if none < len(t.Addrs) {
		who = fmt.Sprintf("the sentinels that answered (%d of %d; the others could not be asked) know", none, len(t.Addrs))
	}
	msg := fmt.Sprintf("redis connect (sentinel %v): %s no master named %q (SENTINEL GET-MASTER-ADDR-BY-NAME returned none)", t.Addrs, who, t.MasterName)
	if len(masters) > 0 {
		msg += fmt.Sprintf("; they monitor %s", strings.Join(masters, ", "))
	}
	return errors.New(msg + ": check the master name in the URL, redis+sentinel://host:port/<master name>/<db>")
}

// sentinelMasters asks sc for the names of the masters it monitors (SENTINEL
// MASTERS), quoted and sorted; nil when it does not answer.
func sentinelMasters(ctx context.Context, sc *goredis.SentinelClient) []string {
	masters, err := sc.Masters(ctx).Result()
	if err != nil {
		return nil
	}
	names := []string{}
	for _, m := range masters {
		if name := masterName(m); name != "" {
			names = append(names, fmt.Sprintf("%q", name))
		}
	}
	slices.Sort(names)
	return names
}

// masterName is the "name" field of one SENTINEL MASTERS entry: a flat
// list of field, value (RESP2) or a map (RESP3).
func masterName(m any) string {
	switch m := m.(type) {
	case []any:
		for i := 0; i+1 < len(m); i += 2 {
			if k, _ := m[i].(string); k == "name" {
				v, _ := m[i+1].(string)
				return v
			}
		}
	case map[any]any:
		v, _ := m["name"].(string)
		return v
	case map[string]any:
		v, _ := m["name"].(string)
		return v
	}
	return ""
}
