package redis

import (
	"context"
	"fmt"
	"strings"

	goredis "github.com/redis/go-redis/v9"
	"go.uber.org/zap"
)

// RouteClientLogs sends the go-redis client's own log lines (connection
// pool and cluster state messages, written with the standard log package
// by default, so they broke incidentd's JSON log stream) to log, as
// warnings named "go-redis". go-redis keeps one logger per process:
// incidentd calls this once at start.
func RouteClientLogs(log *zap.Logger) {
	goredis.SetLogger(clientLogger{log.Named("go-redis")})
}

// clientLogger adapts zap to go-redis's logging interface.
type clientLogger struct{ l *zap.Logger }

// Printf logs one go-redis line.
func (c clientLogger) Printf(_ context.Context, format string, v ...any) {
	c.l.Warn(strings.TrimSpace(fmt.Sprintf(format, v...)))
}
