package ctl_test

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"

	"github.com/llm-im/incidentd/config"
	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/loadgen"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/backend"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestVerifyRedisLarge measures verify of a large Redis store: it loads
// VERIFY_REDIS_INCIDENTS incidents (skipped when unset; VERIFY_REDIS_PORT
// picks the server's port) through storage.Ingest, times one List page
// deep into the broadest state (what verify's List walks did per page),
// then runs verify with the slow log at 1 ms and a PING every 10 ms on
// another connection, and logs verify's time, the longest command the slow
// log holds and the longest PING. It fails when verify does not pass or a
// command took 100 ms or more. The README's figures come from it:
//
//	VERIFY_REDIS_INCIDENTS=300000 go test ./ctl/ -run TestVerifyRedisLarge -v -timeout 30m
func TestVerifyRedisLarge(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv("VERIFY_REDIS_INCIDENTS"))
	if err != nil || n <= 0 {
		t.Skip("set VERIFY_REDIS_INCIDENTS (e.g. 300000) to run it")
	}
	port, _ := strconv.Atoi(os.Getenv("VERIFY_REDIS_PORT"))
	srv := redistest.StartStandalone(t, redistest.Options{Port: port, Extra: []string{"save \"\"", "appendonly no"}})
	c := srv.Client(t)
	ctx := context.Background()
	st := config.Default().State
	st.Backend, st.RedisURL = config.BackendRedis, srv.URL()
	s, err := backend.Open(st, zap.NewNop(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	load := time.Now()
	cfg := loadgen.DefaultConfig()
	cfg.DuplicateRatio, cfg.AckRatio, cfg.ResolveRatio = 0, 0.05, 0.15
	g := loadgen.New(cfg)
	fp, err := dedupe.NewFingerprinter(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	f := dedupe.NewFolder(15*time.Minute, storetest.NewIDs("big"))
	batch := make([]dedupe.Keyed, 0, 2000)
	for stored := int64(0); stored < int64(n); {
		batch = batch[:0]
		for range min(2000, max(int(int64(n)-stored), 1)) {
			ev := g.Next()
			batch = append(batch, dedupe.Keyed{Event: ev, Fingerprint: fp.Fingerprint(&ev)})
		}
		if _, _, err := storage.Ingest(ctx, s, f, batch, time.Now); err != nil {
			t.Fatal(err)
		}
		sts, err := s.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		stored = sts.Incidents
	}
	t.Logf("loaded %d incidents in %v", n, time.Since(load).Round(time.Second))

	// The broadest state, and one page of it deep down, as verify's List
	// walk read it before.
	var broad incident.State
	var most int64
	for _, state := range incident.States {
		k, err := s.Count(ctx, storage.Filter{States: []incident.State{state}})
		if err != nil {
			t.Fatal(err)
		}
		if k > most {
			broad, most = state, k
		}
	}
	t0 := time.Now()
	if _, err := s.List(ctx, storage.Filter{States: []incident.State{broad}}, storage.Page{Offset: int(most) / 2, Limit: 1000}); err != nil {
		t.Fatal(err)
	}
	t.Logf("one List page (1000) at offset %d of state=%s (%d incidents): %v", most/2, broad, most, time.Since(t0).Round(time.Millisecond))
	_ = s.Close()

	for _, kv := range [][2]string{{"slowlog-log-slower-than", "1000"}, {"slowlog-max-len", "100000"}} {
		if err := c.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.SlowLogReset(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var maxPing time.Duration
	var pings int
	wg.Add(1)
	go func() {
		defer wg.Done()
		pc := goredis.NewClient(srv.Options())
		defer pc.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			t0 := time.Now()
			if err := pc.Ping(ctx).Err(); err != nil {
				t.Error(err)
				return
			}
			maxPing = max(maxPing, time.Since(t0))
			pings++
		}
	}()
	var out, errb bytes.Buffer
	vctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	t0 = time.Now()
	code := ctl.Run(vctx, []string{"verify", "--state-backend", "redis", "--state-redis-url", srv.URL()}, ctl.IO{Out: &out, Err: &errb, In: strings.NewReader(""), Env: func(string) (string, bool) { return "", false }})
	took := time.Since(t0)
	close(stop)
	wg.Wait()
	if code != ctl.ExitOK {
		t.Fatalf("verify -> %d\n%s\n%s", code, clipLog(out.String()), errb.String())
	}
	logs, err := c.SlowLogGet(ctx, -1).Result()
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(logs, func(a, b goredis.SlowLog) int { return int(b.Duration - a.Duration) })
	var longest time.Duration
	what := "none over 1 ms"
	if len(logs) > 0 {
		longest = logs[0].Duration
		what = strings.Join(logs[0].Args[:min(len(logs[0].Args), 3)], " ")
	}
	t.Logf("verify of %d incidents: %v; %d commands over 1 ms, the longest %v (%s); %d PINGs, the longest %v\n%s",
		n, took.Round(100*time.Millisecond), len(logs), longest, what, pings, maxPing.Round(100*time.Microsecond), out.String())
	kinds := map[string][]time.Duration{}
	for _, l := range logs {
		k := strings.ToLower(l.Args[0])
		if k == "evalsha" && len(l.Args) > 4 {
			k += " " + l.Args[4] // the query script's mode: list or count
		}
		kinds[k] = append(kinds[k], l.Duration)
	}
	for k, ds := range kinds {
		t.Logf("slow log: %d × %s, the longest %v, the median %v", len(ds), k, ds[0], ds[len(ds)/2])
	}
	if longest >= 100*time.Millisecond {
		t.Errorf("a command took %v during verify (%s)", longest, what)
	}
}
