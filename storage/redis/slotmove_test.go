package redis_test

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestSlotMoveStopsWritesUntilDone moves the deployment's slot to another
// master by hand, as redis-cli --cluster reshard does: IMPORTING on the
// new master, MIGRATING on the old one, then the keys, then SETSLOT NODE.
// Halfway, with only the all-incidents set moved (where a script that the
// old master redirected by ASK ran on the new one against absent keys and
// wrote a second store there), every write fails and nothing is written
// on the new master; once the move is done, writes go on and the store is
// whole.
func TestSlotMoveStopsWritesUntilDone(t *testing.T) {
	c := redistest.StartCluster(t)
	ctx := context.Background()
	s := open(t, redis.Config{Cluster: true, ClusterNodes: c.Nodes(), KeyPrefix: "mig"})
	all := storetest.Population(40, 7)
	storetest.Put(t, s, all[:30]...)

	src, _ := c.MasterOf(t, "{mig}:incidents")
	nodeOf := func(addr string) *goredis.Client {
		n := goredis.NewClient(&goredis.Options{Addr: addr})
		t.Cleanup(func() { _ = n.Close() })
		return n
	}
	from := nodeOf(src)
	var to *goredis.Client
	var toAddr string
	for _, a := range c.Addrs {
		if a == src {
			continue
		}
		if role, err := nodeOf(a).Do(ctx, "ROLE").Slice(); err == nil && role[0] == "master" {
			to, toAddr = nodeOf(a), a
			break
		}
	}
	if to == nil {
		t.Fatal("no other master")
	}
	slot, err := from.ClusterKeySlot(ctx, "{mig}:incidents").Result()
	if err != nil {
		t.Fatal(err)
	}
	fromID, toID := from.Do(ctx, "CLUSTER", "MYID").Val(), to.Do(ctx, "CLUSTER", "MYID").Val()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(to.Do(ctx, "CLUSTER", "SETSLOT", slot, "IMPORTING", fromID).Err())
	must(from.Do(ctx, "CLUSTER", "SETSLOT", slot, "MIGRATING", toID).Err())
	host, port, _ := net.SplitHostPort(toAddr)
	p, _ := strconv.Atoi(port)
	must(from.Migrate(ctx, host, strconv.Itoa(p), "{mig}:incidents", 0, 5e9).Err())

	// A new identity: nothing to look up, so only the slot's state can
	// stop its write.
	fresh := all[30].Clone()
	fresh.ID, fresh.Fingerprint, fresh.ReopenOf, fresh.Version = "inc-fresh", "v1:0123456789abcdef0123456789abcdef", "", 1
	halfway := storage.Batch{Incidents: []*incident.Incident{fresh}, EventIDs: []string{"mig:halfway"}, At: storetest.Base}
	if err := s.Apply(ctx, halfway); err == nil {
		t.Fatal("a write halfway through the slot's move succeeded")
	} else if !strings.Contains(err.Error(), "TRYAGAIN") {
		t.Logf("the halfway write failed with %v", err)
	}
	if n := to.ClusterCountKeysInSlot(ctx, int(slot)).Val(); n != 1 {
		t.Fatalf("the new master holds %d keys of the slot halfway, want the 1 moved", n)
	}

	for {
		keys := from.ClusterGetKeysInSlot(ctx, int(slot), 500).Val()
		if len(keys) == 0 {
			break
		}
		args := []any{"MIGRATE", host, p, "", 0, 5000, "KEYS"}
		for _, k := range keys {
			args = append(args, k)
		}
		must(from.Do(ctx, args...).Err())
	}
	for _, a := range c.Addrs {
		if role, err := nodeOf(a).Do(ctx, "ROLE").Slice(); err == nil && role[0] == "master" {
			must(nodeOf(a).Do(ctx, "CLUSTER", "SETSLOT", slot, "NODE", toID).Err())
		}
	}
	redistest.Eventually(t, 30e9, "the write after the move", func() error {
		return s.Apply(ctx, halfway)
	})
	storetest.CheckFilters(t, s, append(all[:30:30], fresh))
}

// TestClusterFollowsAMasterKilled: once the replica of a master killed
// with SIGKILL has taken its slots, the store writes again within seconds,
// not after go-redis's minute-old slot map is reloaded on its own (it
// marked the dead node failing and kept dialling it: stalls of 17 to 27 s
// measured by a black-box run, up to a minute in principle).
func TestClusterFollowsAMasterKilled(t *testing.T) {
	c := redistest.StartCluster(t)
	ctx := context.Background()
	s := open(t, redis.Config{Cluster: true, ClusterNodes: c.Nodes(), KeyPrefix: "kill", DialTimeout: time.Second})
	all := storetest.Population(20, 3)
	storetest.Put(t, s, all[:10]...)
	_, promoted := c.KillMasterOf(t, "{kill}:incidents")
	// Map loaded at the start: without a reload on the failed dial, the
	// next minute's writes go to the dead master.
	redistest.Eventually(t, 20*time.Second, "a write through "+promoted, func() error {
		in := all[10]
		return s.Apply(ctx, storage.Batch{Incidents: []*incident.Incident{in}, EventIDs: []string{"kill:" + in.ID}, At: storetest.Base})
	})
	storetest.Put(t, s, all[11:]...)
	storetest.CheckFilters(t, s, all)
}
