package redistest

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// MasterName is the name the sentinels monitor.
const MasterName = "mymaster"

// Sentinel is a master, one replica and three sentinels watching them.
type Sentinel struct {
	// Servers are the master and the replica, in start order (which one is
	// the master changes with failovers).
	Servers []*Server
	// Addrs are the sentinels' host:port.
	Addrs []string
}

// StartSentinel starts a master, a replica and three sentinels (quorum 2,
// down-after 1s) and waits until every sentinel knows the replica and the
// other sentinels, so a failover can happen.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	Require(t, "redis-sentinel")
	master := StartStandalone(t, Options{})
	replica := StartStandalone(t, Options{Extra: []string{"replicaof 127.0.0.1 " + port(master.Addr)}})
	sn := &Sentinel{Servers: []*Server{master, replica}}
	root := t.TempDir()
	for range 3 {
		p := FreePort(t)
		proc := start(t, "redis-sentinel", filepath.Join(root, "sentinel-"+strconv.Itoa(p)), p, []string{
			fmt.Sprintf("sentinel monitor %s 127.0.0.1 %s 2", MasterName, port(master.Addr)),
			"sentinel down-after-milliseconds " + MasterName + " 1000",
			"sentinel failover-timeout " + MasterName + " 10000",
			"sentinel parallel-syncs " + MasterName + " 1",
		})
		addr := "127.0.0.1:" + strconv.Itoa(p)
		waitPing(t, &goredis.Options{Addr: addr, DisableIdentity: true}, proc)
		sn.Addrs = append(sn.Addrs, addr)
	}
	sn.WaitSettled(t)
	return sn
}

func port(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }

// URL is the deployment's redis+sentinel:// URL.
func (sn *Sentinel) URL() string {
	return "redis+sentinel://" + strings.Join(sn.Addrs, ",") + "/" + MasterName + "/0"
}

func (sn *Sentinel) client(i int) *goredis.SentinelClient {
	return goredis.NewSentinelClient(&goredis.Options{Addr: sn.Addrs[i], DisableIdentity: true})
}

// MasterAddr asks the first sentinel for the current master.
func (sn *Sentinel) MasterAddr(t testing.TB) string {
	t.Helper()
	c := sn.client(0)
	defer c.Close()
	a, err := c.GetMasterAddrByName(context.Background(), MasterName).Result()
	if err != nil {
		t.Fatalf("sentinel get-master-addr-by-name: %v", err)
	}
	return a[0] + ":" + a[1]
}

// WaitSettled polls until every sentinel sees one healthy replica and the
// two other sentinels, and all agree on the master.
func (sn *Sentinel) WaitSettled(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	Eventually(t, 60*time.Second, "sentinels settled", func() error {
		var masters []string
		for i := range sn.Addrs {
			c := sn.client(i)
			reps, err := c.Replicas(ctx, MasterName).Result()
			if err == nil && len(reps) != 1 {
				err = fmt.Errorf("sentinel %d knows %d replicas", i, len(reps))
			}
			if err == nil && !strings.Contains(reps[0]["flags"], "slave") || err == nil && strings.Contains(reps[0]["flags"], "down") {
				err = fmt.Errorf("sentinel %d: replica flags %q", i, reps[0]["flags"])
			}
			if err == nil && reps[0]["master-link-status"] != "ok" {
				err = fmt.Errorf("sentinel %d: replica link %q", i, reps[0]["master-link-status"])
			}
			var sents []map[string]string
			if err == nil {
				sents, err = c.Sentinels(ctx, MasterName).Result()
			}
			if err == nil && len(sents) != 2 {
				err = fmt.Errorf("sentinel %d knows %d other sentinels", i, len(sents))
			}
			var m []string
			if err == nil {
				m, err = c.GetMasterAddrByName(ctx, MasterName).Result()
			}
			c.Close()
			if err != nil {
				return err
			}
			masters = append(masters, m[0]+":"+m[1])
		}
		for _, m := range masters[1:] {
			if m != masters[0] {
				return fmt.Errorf("sentinels disagree on the master: %v", masters)
			}
		}
		return nil
	})
}

// Failover runs SENTINEL FAILOVER and waits until the sentinels name the
// replica as the master and it reports the master role. It returns the new
// master's address. (The old master rejoins as a replica shortly after;
// call WaitSettled before another failover.)
func (sn *Sentinel) Failover(t testing.TB) string {
	t.Helper()
	old := sn.MasterAddr(t)
	c := sn.client(0)
	defer c.Close()
	if err := c.Failover(context.Background(), MasterName).Err(); err != nil {
		t.Fatalf("sentinel failover: %v", err)
	}
	var now string
	Eventually(t, 60*time.Second, "sentinel failover to a new master", func() error {
		now = sn.MasterAddr(t)
		if now == old {
			return fmt.Errorf("master still %s", old)
		}
		return roleIs(now, "master")
	})
	return now
}

// roleIs checks a server's ROLE.
func roleIs(addr, want string) error {
	c := goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	r, err := c.Do(ctx, "ROLE").Slice()
	if err != nil {
		return err
	}
	if len(r) == 0 || r[0] != want {
		return fmt.Errorf("%s has role %v, want %s", addr, r, want)
	}
	return nil
}
