package redistest

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Cluster is a Redis Cluster of three masters and three replicas, created
// with redis-cli --cluster create.
type Cluster struct {
	// Addrs are the six nodes' host:port.
	Addrs []string
	procs map[string]*process
}

// StartCluster starts six cluster-enabled servers (each with the extra
// config lines), joins them with `redis-cli --cluster create ...
// --cluster-replicas 1 --cluster-yes` and waits until every node reports
// cluster_state:ok and knows all six.
func StartCluster(t testing.TB, extra ...string) *Cluster {
	t.Helper()
	Require(t, "redis-server")
	cli := Require(t, "redis-cli")
	root := t.TempDir()
	c := &Cluster{procs: map[string]*process{}}
	for range 6 {
		p := FreePort(t)
		proc := start(t, "redis-server", filepath.Join(root, "node-"+strconv.Itoa(p)), p, append([]string{
			"cluster-enabled yes", "cluster-config-file nodes.conf", "cluster-node-timeout 2000",
			"cluster-port " + strconv.Itoa(p+10000), "appendonly no",
		}, extra...))
		addr := "127.0.0.1:" + strconv.Itoa(p)
		waitPing(t, &goredis.Options{Addr: addr, DisableIdentity: true}, proc)
		c.Addrs = append(c.Addrs, addr)
		c.procs[addr] = proc
	}
	args := append([]string{"--cluster", "create"}, c.Addrs...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	c.waitOK(t)
	return c
}

// Nodes is the cluster's seed list as redis_cluster_nodes takes it.
func (c *Cluster) Nodes() []string {
	out := make([]string, len(c.Addrs))
	for i, a := range c.Addrs {
		out[i] = "redis://" + a
	}
	return out
}

func node(addr string) *goredis.Client {
	return goredis.NewClient(&goredis.Options{Addr: addr, DisableIdentity: true})
}

// waitOK polls until every node reports cluster_state:ok, six known nodes
// and all slots assigned.
func (c *Cluster) waitOK(t testing.TB) {
	t.Helper()
	Eventually(t, 60*time.Second, "cluster state ok on every node", func() error {
		for _, a := range c.Addrs {
			n := node(a)
			info, err := n.ClusterInfo(context.Background()).Result()
			n.Close()
			if err != nil {
				return err
			}
			for _, want := range []string{"cluster_state:ok", "cluster_known_nodes:6", "cluster_slots_ok:16384"} {
				if !strings.Contains(info, want) {
					return fmt.Errorf("%s: no %s", a, want)
				}
			}
		}
		return nil
	})
}

// MasterOf returns the address of the master serving key's slot and of one
// of its replicas.
// It polls until the slot's master lists a replica.
func (c *Cluster) MasterOf(t testing.TB, key string) (master, replica string) {
	t.Helper()
	Eventually(t, 30*time.Second, "a master with a replica for "+key, func() error {
		var err error
		master, replica, err = c.masterOf(key)
		return err
	})
	return master, replica
}

func (c *Cluster) masterOf(key string) (master, replica string, err error) {
	n := node(c.Addrs[0])
	defer n.Close()
	ctx := context.Background()
	slot, err := n.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", "", err
	}
	//lint:ignore SA1019 go-redis's cluster client routes by CLUSTER SLOTS; the helper reads the same view.
	slots, err := n.ClusterSlots(ctx).Result()
	if err != nil {
		return "", "", err
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 1 {
			return s.Nodes[0].Addr, s.Nodes[1].Addr, nil
		}
	}
	return "", "", fmt.Errorf("no master with a replica for slot %d", slot)
}

// Failover sends CLUSTER FAILOVER to a replica of the master serving key's
// slot and waits until it is that slot's master and the cluster is ok on
// every node. It returns the old and the new master.
func (c *Cluster) Failover(t testing.TB, key string) (oldMaster, newMaster string) {
	t.Helper()
	oldMaster, newMaster = c.MasterOf(t, key)
	n := node(newMaster)
	defer n.Close()
	if err := n.ClusterFailover(context.Background()).Err(); err != nil {
		t.Fatalf("cluster failover on %s: %v", newMaster, err)
	}
	Eventually(t, 60*time.Second, "cluster failover of "+oldMaster, func() error {
		if err := roleIs(newMaster, "master"); err != nil {
			return err
		}
		if m, _, err := c.masterOf(key); err != nil || m != newMaster {
			return fmt.Errorf("slot still served by %s (%v)", m, err)
		}
		return nil
	})
	c.waitOK(t)
	return oldMaster, newMaster
}

// BreakAwayFrom kills the master of a slot range other than key's, and its
// replica, and waits until the master of key's slot reports
// cluster_state:fail: a cluster that requires full coverage (the default)
// then refuses every keyed command with CLUSTERDOWN, while its nodes still
// answer PING. The cluster stays broken for the rest of the test.
func (c *Cluster) BreakAwayFrom(t testing.TB, key string) {
	t.Helper()
	keep, _ := c.MasterOf(t, key)
	for i := 0; ; i++ {
		other := fmt.Sprintf("other-%d", i)
		master, replica := c.MasterOf(t, other)
		if master == keep {
			continue
		}
		c.procs[master].Kill()
		c.procs[replica].Kill()
		break
	}
	Eventually(t, 60*time.Second, "cluster_state:fail on "+keep, func() error {
		n := node(keep)
		defer n.Close()
		info, err := n.ClusterInfo(context.Background()).Result()
		if err != nil {
			return err
		}
		if !strings.Contains(info, "cluster_state:fail") {
			return fmt.Errorf("%s: cluster state not failed yet", keep)
		}
		return nil
	})
}

// KillMasterOf kills (SIGKILL) the master serving key's slot and waits
// until its replica has taken the slot over (cluster-node-timeout is 2 s
// here). It returns the dead master and the new one.
func (c *Cluster) KillMasterOf(t testing.TB, key string) (dead, promoted string) {
	t.Helper()
	dead, promoted = c.MasterOf(t, key)
	c.procs[dead].Kill()
	Eventually(t, 60*time.Second, promoted+" promoted", func() error {
		n := node(promoted)
		defer n.Close()
		role, err := n.Do(context.Background(), "ROLE").Slice()
		if err != nil {
			return err
		}
		if len(role) == 0 || role[0] != "master" {
			return fmt.Errorf("%s is still a %v", promoted, role[0])
		}
		return nil
	})
	return dead, promoted
}
