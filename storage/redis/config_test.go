package redis

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
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
		var buf bytes.Buffer
		core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel)
		RouteClientLogs(zap.New(core))
		_, err := New(Config{URL: u, DialTimeout: 100e6}, zap.New(core), prometheus.NewRegistry())
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

func TestTLSFilesNeedRediss(t *testing.T) {
	if _, err := New(Config{URL: "redis://127.0.0.1:1", TLSCAFile: "ca.pem"}, nil, nil); err == nil {
		t.Fatal("tls files with redis:// accepted")
	}
}
