package redis

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// The reasons Redis refuses a write that the store reads around: the
// reason label of incidentd_redis_query_write_refusals_total.
const (
	// refusedReplica: a read-only replica (READONLY).
	refusedReplica = "readonly"
	// refusedACL: an ACL user without the permission (NOPERM, or inside
	// a script on 7.x "The user executing the script can't run this
	// command").
	refusedACL = "noperm"
	// refusedOOM: maxmemory reached and nothing to evict (noeviction, or
	// a volatile-* policy with no key that has a TTL).
	refusedOOM = "oom"
)

// refusalReasons are the label values, in a fixed order.
var refusalReasons = []string{refusedReplica, refusedACL, refusedOOM}

// refusal says why Redis refused a write, as one of refusalReasons, or ""
// when err is no such refusal.
func refusal(err error) string {
	var re goredis.Error
	if !errors.As(err, &re) {
		return ""
	}
	msg := re.Error()
	switch {
	case strings.Contains(msg, "READONLY"):
		return refusedReplica
	case strings.Contains(msg, "NOPERM") || strings.Contains(msg, "can't run this command"):
		return refusedACL
	case strings.HasPrefix(msg, "OOM ") || strings.Contains(msg, "OOM command not allowed"):
		return refusedOOM
	}
	return ""
}

// readOnly reports a Redis refusal to write because of who asks: a
// replica or an ACL user without the permission (not a full server).
func readOnly(err error) bool {
	r := refusal(err)
	return r == refusedReplica || r == refusedACL
}

// readOnlyRetry is how long queries go without scratch keys after Redis
// refused one: then the next query tries the scratch keys again (a replica
// promoted, a permission granted, memory freed).
const readOnlyRetry = time.Minute

// readOnlyQueries remembers that Redis refused a query's scratch keys, so
// that List and Count run queryScript in read-only mode for readOnlyRetry
// instead of failing first each time. Safe for concurrent use.
type readOnlyQueries struct {
	until    atomic.Int64 // unix nanoseconds; read-only mode while now is before it
	refusals *prometheus.CounterVec
	log      *zap.Logger
	logged   sync.Map // reason -> struct{}: each reason is logged once
}

// active reports whether queries should run in read-only mode now.
func (q *readOnlyQueries) active(now time.Time) bool { return now.UnixNano() < q.until.Load() }

// refused records a refusal of reason (one of refusalReasons): it counts
// it, logs the first of each reason (warn for a full server, info for
// a replica or a reading user, where it is expected), and switches to
// read-only mode for readOnlyRetry.
func (q *readOnlyQueries) refused(reason string, err error, now time.Time) {
	q.until.Store(now.Add(readOnlyRetry).UnixNano())
	q.refusals.WithLabelValues(reason).Inc()
	if _, seen := q.logged.LoadOrStore(reason, struct{}{}); seen {
		return
	}
	level := zapcore.InfoLevel
	if reason == refusedOOM {
		level = zapcore.WarnLevel
	}
	q.log.Log(level, "redis refused a query's scratch keys; List and Count answer without them (the same results, built in the script's memory), and try them again after "+readOnlyRetry.String(),
		zap.String("reason", reason), zap.Error(err))
}
