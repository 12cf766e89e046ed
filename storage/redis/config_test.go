package redis

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/llm-im/incidentd/storage/redis/redistest"
)

func TestConfigOverridesURLCredentials(t *testing.T) {
	c := Config{URL: "redis+sentinel://u:p@s1/m?sentinel_password=sp", Username: "U", Password: "P", SentinelPassword: "SP", SentinelUsername: "SU"}
	got, err := c.resolve()
	if err != nil {
		t.Fatal(err)
	}
	if got.Username != "U" || got.Password != "P" || got.SentinelUsername != "SU" || got.SentinelPassword != "SP" {
		t.Fatalf("got %+v", got)
	}
}

// TestNewNeverLogsPasswords: a failed New (a bad URL, or nothing listening
// on the port) shows no password in its error, its log lines or go-redis's
// own lines, even when the password holds unencoded URL delimiters.
func TestNewNeverLogsPasswords(t *testing.T) {
	urls := []string{
		"redis://:hunter2@127.0.0.1:1/0",
		"redis://user:hunter2@127.0.0.1:1/0",
		"redis+sentinel://user:hunter2@127.0.0.1:1/m?sentinel_password=hunter2",
		"redis://:pre?hunter2@127.0.0.1:1/0",
		"redis://incd:Us3r:P@hunter2/w@127.0.0.1:1/0",
		"redis://:pre/hunter2@127.0.0.1:1/0",
		"redis://:pre?hunter2@127.0.0.1:1/x",
		"redis://incd:Us3r:P@hunter2/w@127.0.0.1:1/99",
		"redis://:pre/hunter2@127.0.0.1:1:2/0",
		"localhost:6379",
		"http://:hunter2@localhost",
		"redis://:hunter2@a:1,b:2/0",
		"redis://:hunter2%zz@localhost/0",
		"redis://u:hunter2@localhost/0?password=hunter2",
		"redis+sentinel://s1:26379/m?sentinel_password=hunter2&x=1",
		"redis://:hun ter2@local host/0",
	}
	for _, u := range urls {
		var buf redistest.SyncBuffer
		core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel)
		RouteClientLogs(zap.New(core))
		before := clientGoroutines(nil)
		_, err := New(Config{URL: u, DialTimeout: 100e6}, zap.New(core), prometheus.NewRegistry())
		// go-redis dials in goroutines of its own that log after New
		// returned: wait for them, so that their lines are checked too.
		deadline := time.Now().Add(10 * time.Second)
		for len(clientGoroutines(before)) > 0 {
			if time.Now().After(deadline) {
				t.Fatalf("%s: go-redis goroutines still running 10s after New", u)
			}
			time.Sleep(10 * time.Millisecond)
		}
		RouteClientLogs(zap.NewNop())
		if err == nil {
			t.Fatalf("%s: New succeeded", u)
		}
		for _, s := range []string{err.Error(), buf.String()} {
			if strings.Contains(s, "hunter2") || strings.Contains(s, "ter2") {
				t.Fatalf("%s: password leaked: err %v, log %s", u, err, buf.String())
			}
		}
	}
}

// clientGoroutines returns the ids of the goroutines running go-redis code
// (started by it, or calling into it), except those in old.
func clientGoroutines(old map[string]bool) map[string]bool {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	ids := map[string]bool{}
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if !strings.Contains(g, "github.com/redis/go-redis/") {
			continue
		}
		// "goroutine 14 [running]:"
		if f := strings.Fields(g); len(f) > 1 && !old[f[1]] {
			ids[f[1]] = true
		}
	}
	return ids
}

func TestTLSFilesNeedRediss(t *testing.T) {
	if _, err := New(Config{URL: "redis://127.0.0.1:1", TLSCAFile: "ca.pem"}, nil, nil); err == nil {
		t.Fatal("tls files with redis:// accepted")
	}
}
