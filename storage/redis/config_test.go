package redis

import (
	"bytes"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestParseURL(t *testing.T) {
	tests := []struct {
		url  string
		want target
	}{
		{"redis://localhost:6379/0", target{Addrs: []string{"localhost:6379"}}},
		{"redis://localhost", target{Addrs: []string{"localhost:6379"}}},
		{"redis://localhost:6380/3", target{Addrs: []string{"localhost:6380"}, DB: 3}},
		{"redis://:pass@localhost:6379/0", target{Addrs: []string{"localhost:6379"}, Password: "pass"}},
		{"redis://user:pa%40ss@localhost:6379/0", target{Addrs: []string{"localhost:6379"}, Username: "user", Password: "pa@ss"}},
		{"redis://user:p@ss@localhost/1", target{Addrs: []string{"localhost:6379"}, Username: "user", Password: "p@ss", DB: 1}},
		{"rediss://localhost:6380/0", target{Addrs: []string{"localhost:6380"}, TLS: true}},
		{"redis://[::1]:7000", target{Addrs: []string{"[::1]:7000"}}},
		{"redis://[::1]", target{Addrs: []string{"[::1]:6379"}}},
		{"redis+sentinel://sentinel1:26379,sentinel2:26379,sentinel3:26379/mymaster/0", target{
			Addrs: []string{"sentinel1:26379", "sentinel2:26379", "sentinel3:26379"}, Sentinel: true, MasterName: "mymaster"}},
		{"redis+sentinel://s1,s2/mymaster", target{Addrs: []string{"s1:26379", "s2:26379"}, Sentinel: true, MasterName: "mymaster"}},
		{"redis+sentinel://app:mpass@s1:26379/mymaster/2?sentinel_username=sen&sentinel_password=spass", target{
			Addrs: []string{"s1:26379"}, Sentinel: true, MasterName: "mymaster", DB: 2,
			Username: "app", Password: "mpass", SentinelUsername: "sen", SentinelPassword: "spass"}},
		{"rediss+sentinel://s1:26379/mymaster", target{Addrs: []string{"s1:26379"}, Sentinel: true, TLS: true, MasterName: "mymaster"}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := parseURL(tt.url)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !equalTarget(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func equalTarget(a, b target) bool {
	return strings.Join(a.Addrs, ",") == strings.Join(b.Addrs, ",") && a.TLS == b.TLS && a.Sentinel == b.Sentinel &&
		a.MasterName == b.MasterName && a.DB == b.DB && a.Username == b.Username && a.Password == b.Password &&
		a.SentinelUsername == b.SentinelUsername && a.SentinelPassword == b.SentinelPassword
}

// badURLs all carry the secret "hunter2" somewhere; no error may show it.
var badURLs = []string{
	"localhost:6379",
	"http://:hunter2@localhost",
	"redis://:hunter2@a:1,b:2/0",
	"redis://:hunter2@localhost:notaport/0",
	"redis://:hunter2@localhost/x",
	"redis://:hunter2@/0",
	"redis://:hunter2%zz@localhost/0",
	"redis://u:hunter2@localhost/0?password=hunter2",
	"redis://u:hunter2@localhost/0?foo=1",
	"redis+sentinel://:hunter2@s1:26379",
	"redis+sentinel://s1:26379/m?sentinel_password=hunter2&x=1",
	"redis://:hun ter2@local host/0",
}

func TestParseURLErrorsRedactPasswords(t *testing.T) {
	for _, u := range badURLs {
		t.Run(u, func(t *testing.T) {
			_, err := parseURL(u)
			if err == nil {
				t.Fatal("parsed, want an error")
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "hun ter2") {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestClusterNodes(t *testing.T) {
	got, err := parseClusterNodes([]string{"127.0.0.1:7000", "redis://u:pw@127.0.0.1:7001", "redis://127.0.0.1:7002"})
	if err != nil {
		t.Fatal(err)
	}
	want := target{Addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002"}, Username: "u", Password: "pw"}
	if !equalTarget(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range [][]string{nil, {"rediss://a:1", "redis://b:2"}, {"redis://:hunter2@a:1/3"}, {"redis+sentinel://:hunter2@a/m"}} {
		if _, err := parseClusterNodes(bad); err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%v: err = %v, want an error without the password", bad, err)
		}
	}
}

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

// TestNewNeverLogsPasswords: a failed New (nothing listens on the port)
// shows no password in its error or its log lines.
func TestNewNeverLogsPasswords(t *testing.T) {
	urls := append([]string{
		"redis://:hunter2@127.0.0.1:1/0",
		"redis://user:hunter2@127.0.0.1:1/0",
		"redis+sentinel://user:hunter2@127.0.0.1:1/m?sentinel_password=hunter2",
	}, badURLs...)
	for _, u := range urls {
		var buf bytes.Buffer
		core := zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(&buf), zap.DebugLevel)
		_, err := New(Config{URL: u, DialTimeout: 100e6}, zap.New(core), prometheus.NewRegistry())
		if err == nil {
			t.Fatalf("%s: New succeeded", u)
		}
		if strings.Contains(err.Error(), "hunter2") || strings.Contains(buf.String(), "hunter2") {
			t.Fatalf("%s: password leaked: err %v, log %s", u, err, buf.String())
		}
	}
}

func TestTLSFilesNeedRediss(t *testing.T) {
	if _, err := New(Config{URL: "redis://127.0.0.1:1", TLSCAFile: "ca.pem"}, nil, nil); err == nil {
		t.Fatal("tls files with redis:// accepted")
	}
}
