package redis

import (
	"slices"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestKeySlot(t *testing.T) {
	for key, want := range map[string]int{
		"foo": 12182, "bar": 5061, "hello": 866, "123456789": 12739,
		"{foo}:incidents": 12182, "x{foo}y{bar}": 12182, "{}foo": keySlot("{}foo"), "foo{": keySlot("foo{"),
	} {
		if got := keySlot(key); got != want {
			t.Errorf("keySlot(%q) = %d, want %d", key, got, want)
		}
	}
	if keySlot("{}foo") == keySlot("foo") {
		t.Error("an empty hash tag is no tag: {}foo hashes whole")
	}
}

// TestTopologyObserve: the first map is recorded, an equal one changes
// nothing, a changed master is one counted info line that lists the moved
// ranges and says whether the deployment's slot moved.
func TestTopologyObserve(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	RouteClientLogs(zap.New(core))
	t.Cleanup(func() { RouteClientLogs(zap.NewNop()) })
	w := &topology{slot: keySlot("{dep}")} // 2374: in the first range
	node := func(a string) []goredis.ClusterNode { return []goredis.ClusterNode{{Addr: a}} }
	m1 := []goredis.ClusterSlot{{Start: 0, End: 5460, Nodes: node("a:1")}, {Start: 5461, End: 10922, Nodes: node("b:1")}, {Start: 10923, End: 16383, Nodes: node("c:1")}}
	before := clusterSlotChanges.Load()
	w.observe(m1, "a:1")
	w.observe(slices.Clone(m1), "b:1")
	if n := clusterSlotChanges.Load() - before; n != 0 || logs.FilterLevelExact(zapcore.InfoLevel).Len() != 0 {
		t.Fatalf("no change: %d counted, logs %v", n, logs.All())
	}
	m2 := slices.Clone(m1)
	m2[2].Nodes = node("f:1")
	w.observe(m2, "c:1")
	m3 := slices.Clone(m2)
	m3[0].Nodes = node("d:1")
	w.observe(m3, "c:1")
	if n := clusterSlotChanges.Load() - before; n != 2 {
		t.Fatalf("%d changes counted, want 2", n)
	}
	info := logs.FilterLevelExact(zapcore.InfoLevel).All()
	if len(info) != 2 || info[0].LoggerName != "go-redis" {
		t.Fatalf("info lines %v, want 2 under go-redis", info)
	}
	if got := info[0].ContextMap()["moved"]; !slices.Equal(got.([]any), []any{"10923-16383: c:1 -> f:1"}) || info[0].Message != "redis cluster: slots moved to other masters (failover or resharding)" {
		t.Errorf("first change: %s %v", info[0].Message, info[0].ContextMap())
	}
	if info[1].Message != "redis cluster: the deployment's slot moved to another master (failover or resharding)" ||
		info[1].ContextMap()["deployment_master_before"] != "a:1" || info[1].ContextMap()["deployment_master"] != "d:1" {
		t.Errorf("second change: %s %v", info[1].Message, info[1].ContextMap())
	}
}

func TestMovedRanges(t *testing.T) {
	before, after := make([]string, slotCount), make([]string, slotCount)
	for i := range before {
		before[i], after[i] = "a", "a"
	}
	for i := 10; i <= 20; i++ {
		after[i] = "b"
	}
	after[21] = ""
	after[16383] = "c"
	got := movedRanges(before, after)
	want := []movedRange{{10, 20, "a", "b"}, {21, 21, "a", ""}, {16383, 16383, "a", "c"}}
	if !slices.Equal(got, want) {
		t.Fatalf("movedRanges = %v, want %v", got, want)
	}
	if s := got[1].String(); s != "21: a -> (none)" {
		t.Errorf("String() = %q", s)
	}
}
