package redis

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// slotCount is the number of Redis Cluster hash slots.
const slotCount = 16384

// maxMovedRanges bounds the slot ranges one topology line lists.
const maxMovedRanges = 16

// clusterSlotChanges counts the changes of the slot map that the Cluster
// clients of this process loaded: one per CLUSTER SLOTS reply whose
// masters differ from the one before. Process-wide, as the client log
// lines are (a process runs one store but for incidentctl migrate).
var clusterSlotChanges atomic.Uint64

// clusterCollectors are the collectors of a Cluster client (none for
// another): incidentd_redis_cluster_slot_map_changes_total.
func clusterCollectors(rdb goredis.UniversalClient) []prometheus.Collector {
	if _, ok := rdb.(*goredis.ClusterClient); !ok {
		return nil
	}
	return []prometheus.Collector{prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "incidentd_redis_cluster_slot_map_changes_total",
		Help: "Changes of the Redis Cluster slot map the client loaded (a slot's master changed: failover or resharding), each logged at info; counted for the whole process.",
	}, func() float64 { return float64(clusterSlotChanges.Load()) })}
}

// topology follows the slot maps a Cluster client loads and logs every
// change of a slot's master: a failover (automatic or CLUSTER FAILOVER),
// a resharding, a node's slots taken over. go-redis reloads its map by
// itself (right after a MOVED reply, else at the first command a minute
// after the last load; the store adds a failed dial, see DialHook) with CLUSTER SLOTS on one of the
// nodes; a hook on every node client sees each reply. go-redis logs none
// of this (its "cluster: slots ... migrated" line needs the maintenance
// notifications of Redis Enterprise).
type topology struct {
	slot int // the deployment's slot: all its keys hash there

	mu      sync.Mutex
	masters []string // by slot, the master's host:port ("" unassigned); nil before the first map
}

// watchTopology hooks every node client cc creates (before any is
// created: New calls it before the first command), so that the slot maps
// they answer are compared. prefix is the deployment's key prefix in
// Cluster form ("{llm-im}").
func watchTopology(cc *goredis.ClusterClient, prefix string) {
	w := &topology{slot: keySlot(prefix)}
	cc.OnNewNode(func(n *goredis.Client) {
		n.AddHook(topologyHook{w: w, node: n.Options().Addr, reload: func() { cc.ReloadState(context.Background()) }})
	})
}

// topologyHook passes every command of one node client through and hands
// a CLUSTER SLOTS reply to the topology.
type topologyHook struct {
	w      *topology
	node   string
	reload func() // asks the client for a new slot map
}

// DialHook asks for a new slot map when a node cannot be dialled: go-redis
// marks the node failing but keeps its map, so after a master's crash it
// went on dialling the dead node until its minute-old map was reloaded,
// up to a minute after a replica had taken over (go-redis coalesces the
// reloads, 200 ms apart at most).
func (h topologyHook) DialHook(next goredis.DialHook) goredis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := next(ctx, network, addr)
		if err != nil {
			h.reload()
		}
		return conn, err
	}
}

func (h topologyHook) ProcessPipelineHook(next goredis.ProcessPipelineHook) goredis.ProcessPipelineHook {
	return next
}

func (h topologyHook) ProcessHook(next goredis.ProcessHook) goredis.ProcessHook {
	return func(ctx context.Context, cmd goredis.Cmder) error {
		err := next(ctx, cmd)
		if cs, ok := cmd.(*goredis.ClusterSlotsCmd); ok && err == nil {
			h.w.observe(cs.Val(), h.node)
		}
		return err
	}
}

// movedRange is a run of slots whose master changed from one node to
// another.
type movedRange struct {
	start, end int
	from, to   string
}

func (m movedRange) String() string {
	name := func(a string) string {
		if a == "" {
			return "(none)"
		}
		return a
	}
	if m.start == m.end {
		return fmt.Sprintf("%d: %s -> %s", m.start, name(m.from), name(m.to))
	}
	return fmt.Sprintf("%d-%d: %s -> %s", m.start, m.end, name(m.from), name(m.to))
}

// observe compares a slot map (the reply of node) with the one before and
// logs what moved, at info, under go-redis (RouteClientLogs); the first
// map is logged at debug.
func (w *topology) observe(slots []goredis.ClusterSlot, node string) {
	masters := make([]string, slotCount)
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			continue
		}
		for i := max(s.Start, 0); i <= s.End && i < slotCount; i++ {
			masters[i] = s.Nodes[0].Addr
		}
	}
	w.mu.Lock()
	before := w.masters
	w.masters = masters
	w.mu.Unlock()
	if before == nil {
		clientEvent(zapcore.DebugLevel, "redis cluster: slot map loaded", zap.String("from_node", node),
			zap.Int("deployment_slot", w.slot), zap.String("deployment_master", masters[w.slot]))
		return
	}
	moved := movedRanges(before, masters)
	if len(moved) == 0 {
		return
	}
	clusterSlotChanges.Add(1)
	shown := make([]string, 0, min(len(moved), maxMovedRanges)+1)
	for i, m := range moved {
		if i == maxMovedRanges {
			shown = append(shown, fmt.Sprintf("and %d more ranges", len(moved)-i))
			break
		}
		shown = append(shown, m.String())
	}
	msg := "redis cluster: slots moved to other masters (failover or resharding)"
	if before[w.slot] != masters[w.slot] {
		msg = "redis cluster: the deployment's slot moved to another master (failover or resharding)"
	}
	clientEvent(zapcore.InfoLevel, msg, zap.Strings("moved", shown), zap.String("from_node", node),
		zap.Int("deployment_slot", w.slot), zap.String("deployment_master_before", before[w.slot]),
		zap.String("deployment_master", masters[w.slot]))
}

// movedRanges lists the runs of slots whose master differs between two
// maps.
func movedRanges(before, after []string) []movedRange {
	var out []movedRange
	for i := 0; i < slotCount; i++ {
		if before[i] == after[i] {
			continue
		}
		if n := len(out); n > 0 && out[n-1].end == i-1 && out[n-1].from == before[i] && out[n-1].to == after[i] {
			out[n-1].end = i
			continue
		}
		out = append(out, movedRange{start: i, end: i, from: before[i], to: after[i]})
	}
	return out
}

// keySlot is the Cluster hash slot of key: CRC16 (XMODEM) of its hash tag
// (the part between the first '{' and the next '}', when not empty), else
// of the whole key, modulo 16384.
func keySlot(key string) int {
	if s := strings.IndexByte(key, '{'); s >= 0 {
		if e := strings.IndexByte(key[s+1:], '}'); e > 0 {
			key = key[s+1 : s+1+e]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % slotCount
}
