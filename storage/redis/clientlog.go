package redis

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// clientLogWindow is how long a go-redis line of one kind silences the
// next ones of that kind.
const clientLogWindow = 10 * time.Second

// RouteClientLogs sends the go-redis client's own log lines (written with
// the standard log package by default, which broke the JSON log stream) to
// log, named "go-redis", at a level by what they say: routine Sentinel and
// Cluster state (a master selected or changed, slots moved) at info,
// discovery chatter (a new sentinel found) at debug, anything else (failed
// dials, failed Sentinel queries) at warn. Of the lines of one kind (one
// go-redis format) at most one is logged per 10 seconds; the next one
// logged carries the number left out in "suppressed", so an outage logs a
// few lines, not one per failed dial. go-redis keeps one logger per
// process: incidentd and incidentctl call this once at start.
func RouteClientLogs(log *zap.Logger) {
	c := newClientLogger(log.Named("go-redis"), time.Now)
	routed.Store(c)
	goredis.SetLogger(c)
}

// routed is the logger RouteClientLogs installed, read by the stores'
// incidentd_redis_client_log_lines_total: go-redis's logger is one per
// process, and so are the counts of its lines.
var routed atomic.Pointer[clientLogger]

// clientLogLines returns how many lines go-redis wrote at level since
// RouteClientLogs, the rate-limited and disabled ones included.
func clientLogLines(level zapcore.Level) uint64 {
	c := routed.Load()
	if c == nil {
		return 0
	}
	return c.lines(level)
}

// clientEvent logs a line of the store's own about the client's state (a
// Cluster slot map that changed) through the logger RouteClientLogs
// installed, as a go-redis line of that level: named go-redis and counted
// in incidentd_redis_client_log_lines_total. Such lines are rare and each
// says something the one before did not, so none is held back by the rate
// limit. Without RouteClientLogs they go nowhere.
func clientEvent(level zapcore.Level, msg string, fields ...zap.Field) {
	c := routed.Load()
	if c == nil {
		return
	}
	c.count(level)
	if ce := c.l.Check(level, msg); ce != nil {
		ce.Write(fields...)
	}
}

// clientLogger adapts zap to go-redis's logging interface.
type clientLogger struct {
	l   *zap.Logger
	now func() time.Time

	// counted is the number of lines seen by level: debug, info, warn.
	counted [3]atomic.Uint64

	mu    sync.Mutex
	kinds map[string]*kindState
}

// countedLevels are the levels clientLogLevel gives, in counted's order.
var countedLevels = [3]zapcore.Level{zapcore.DebugLevel, zapcore.InfoLevel, zapcore.WarnLevel}

func (c *clientLogger) count(level zapcore.Level) {
	for i, l := range countedLevels {
		if l == level {
			c.counted[i].Add(1)
		}
	}
}

func (c *clientLogger) lines(level zapcore.Level) uint64 {
	for i, l := range countedLevels {
		if l == level {
			return c.counted[i].Load()
		}
	}
	return 0
}

// kindState is the rate limit of one kind of line.
type kindState struct {
	logged     time.Time // when the last line of the kind was logged
	suppressed int       // lines left out since
}

func newClientLogger(l *zap.Logger, now func() time.Time) *clientLogger {
	return &clientLogger{l: l, now: now, kinds: map[string]*kindState{}}
}

// clientLogLevels are the levels of the routine go-redis lines, by the
// start of their format; every other line is a warning.
var clientLogLevels = []struct {
	prefix string
	level  zapcore.Level
}{
	{"sentinel: selected addr", zapcore.InfoLevel},
	{"sentinel: new master", zapcore.InfoLevel},
	{"sentinel: discovered new sentinel", zapcore.DebugLevel},
	{"sentinel: ignore addr", zapcore.DebugLevel},
	{"cluster: slots", zapcore.InfoLevel},
	{"ring shard state changed", zapcore.InfoLevel},
}

// clientLogLevel is the level of a go-redis line by its format and, for
// the Sentinel lookup, its text: go-redis asks every sentinel at once and
// cancels the others when one answers, and each cancelled query logs
// "... failed: context canceled", which is routine (debug).
func clientLogLevel(format, msg string) zapcore.Level {
	for _, c := range clientLogLevels {
		if strings.HasPrefix(format, c.prefix) {
			return c.level
		}
	}
	if strings.HasPrefix(format, "sentinel: GetMasterAddrByName") && strings.HasSuffix(msg, context.Canceled.Error()) {
		return zapcore.DebugLevel
	}
	return zapcore.WarnLevel
}

// Printf logs one go-redis line, unless a line of its kind was logged less
// than clientLogWindow ago.
func (c *clientLogger) Printf(_ context.Context, format string, v ...any) {
	msg := strings.TrimSpace(fmt.Sprintf(format, v...))
	level := clientLogLevel(format, msg)
	c.count(level)
	if !c.l.Core().Enabled(level) {
		return
	}
	kind := lineKind(format, msg)
	now := c.now()

	c.mu.Lock()
	st := c.kinds[kind]
	if st != nil && now.Sub(st.logged) < clientLogWindow {
		st.suppressed++
		c.mu.Unlock()
		return
	}
	if st == nil {
		c.forget(now)
		st = &kindState{}
		c.kinds[kind] = st
	}
	suppressed := st.suppressed
	st.logged, st.suppressed = now, 0
	c.mu.Unlock()

	if ce := c.l.Check(level, msg); ce != nil {
		if suppressed > 0 {
			ce.Write(zap.Int("suppressed", suppressed))
		} else {
			ce.Write()
		}
	}
}

// forget drops the kinds not logged for a window when there are many, so
// lines of ever new kinds cannot grow the map without bound. Lines left
// out of a dropped kind are not counted any more. c.mu is held.
func (c *clientLogger) forget(now time.Time) {
	if len(c.kinds) < 256 {
		return
	}
	for k, st := range c.kinds {
		if now.Sub(st.logged) >= clientLogWindow {
			delete(c.kinds, k)
		}
	}
}

// changeFormats start the go-redis lines that say the Sentinel master
// changed: each line of them is a kind of its own, so a failover soon
// after the client's start (which logs its first master) is logged at
// once; only a repeat naming the same master is held back.
var changeFormats = []string{"sentinel: new master", "sentinel: selected addr"}

// verbRE matches one fmt verb.
var verbRE = regexp.MustCompile(`%[-+# 0-9.*\[\]]*[a-zA-Z%]`)

// lineKind is what makes two lines "the same kind": their format, or, for
// a format that is only verbs ("%s", which go-redis uses for prepared
// messages), the message with its digits blanked out.
func lineKind(format, msg string) string {
	for _, f := range changeFormats {
		if strings.HasPrefix(format, f) {
			return "\x01" + msg
		}
	}
	if strings.TrimSpace(verbRE.ReplaceAllString(format, "")) != "" {
		return format
	}
	if len(msg) > 80 {
		msg = msg[:80]
	}
	return "\x00" + strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return '#'
		}
		return r
	}, msg)
}
