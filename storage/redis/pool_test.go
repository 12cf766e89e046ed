package redis_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/llm-im/incidentd/dedupe"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	"github.com/llm-im/incidentd/storage/redis"
	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

// TestPoolSizeBoundsConnections: state.pool_size is every connection a
// standalone store opens to its server, the readiness probe's pipelined
// PING and ROLE included, however many goroutines write, probe and count
// at once (go-redis's separate pipeline pool would add its own).
func TestPoolSizeBoundsConnections(t *testing.T) {
	for _, poolSize := range []int{1, 2} {
		t.Run(fmt.Sprintf("pool_size=%d", poolSize), func(t *testing.T) {
			srv := redistest.StartStandalone(t, redistest.Options{})
			c := srv.Client(t)
			self, err := c.ClientID(ctx).Result()
			if err != nil {
				t.Fatal(err)
			}
			s := open(t, redis.Config{URL: srv.URL(), PoolSize: poolSize, KeyPrefix: uniquePrefix(t)})
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for w := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f := dedupe.NewFolder(0, storetest.NewIDs(fmt.Sprintf("w%d", w)))
					for i := range 15 {
						ev := storetest.Trigger(fmt.Sprintf("e-%d-%d", w, i), fmt.Sprintf("k-%d-%d", w, i), int64(i), incident.P2)
						if err := ingestUntilApplied(s, f, storetest.Key(ev)); err != nil {
							errs <- err
							return
						}
						if err := s.Ping(ctx); err != nil {
							errs <- err
							return
						}
						if _, err := s.Count(ctx, storage.Filter{}); err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			most := 0
			done := make(chan struct{})
			go func() { wg.Wait(); close(done) }()
			for running := true; running; {
				select {
				case <-done:
					running = false
				default:
				}
				list, err := c.ClientList(ctx).Result()
				if err != nil {
					t.Fatal(err)
				}
				n := 0
				for _, line := range strings.Split(strings.TrimSpace(list), "\n") {
					if !strings.HasPrefix(line, fmt.Sprintf("id=%d ", self)) {
						n++
					}
				}
				most = max(most, n)
			}
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			if most > poolSize {
				t.Errorf("%d connections at most, want at most pool_size = %d", most, poolSize)
			}
		})
	}
}
