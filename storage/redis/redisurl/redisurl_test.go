package redisurl_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/llm-im/incidentd/storage/redis/redisurl"
)

func TestParse(t *testing.T) {
	tests := []struct {
		url  string
		want redisurl.URL
	}{
		{"redis://localhost:6379/0", redisurl.URL{Addrs: []string{"localhost:6379"}}},
		{"redis://localhost", redisurl.URL{Addrs: []string{"localhost:6379"}}},
		{"redis://localhost:6380/3", redisurl.URL{Addrs: []string{"localhost:6380"}, DB: 3}},
		{"redis://localhost:6380/15/", redisurl.URL{Addrs: []string{"localhost:6380"}, DB: 15}},
		{"redis://:pass@localhost:6379/0", redisurl.URL{Addrs: []string{"localhost:6379"}, Password: "pass"}},
		{"redis://user:pa%40ss@localhost:6379/0", redisurl.URL{Addrs: []string{"localhost:6379"}, Username: "user", Password: "pa@ss"}},
		{"redis://user:p@ss@localhost/1", redisurl.URL{Addrs: []string{"localhost:6379"}, Username: "user", Password: "p@ss", DB: 1}},
		{"redis://incd:Us3r:P@ss/w@127.0.0.1:16401/0", redisurl.URL{Addrs: []string{"127.0.0.1:16401"}, Username: "incd", Password: "Us3r:P@ss/w"}},
		{"redis://:pre?SECRETQ@127.0.0.1:16401/0", redisurl.URL{Addrs: []string{"127.0.0.1:16401"}, Password: "pre?SECRETQ"}},
		{"redis://:pre/SECRETTAIL@127.0.0.1:16401/0", redisurl.URL{Addrs: []string{"127.0.0.1:16401"}, Password: "pre/SECRETTAIL"}},
		{"redis://:a#b+c@h", redisurl.URL{Addrs: []string{"h:6379"}, Password: "a#b+c"}},
		{"rediss://localhost:6380/0", redisurl.URL{Addrs: []string{"localhost:6380"}, TLS: true}},
		{"redis://[::1]:7000", redisurl.URL{Addrs: []string{"[::1]:7000"}}},
		{"redis://[::1]", redisurl.URL{Addrs: []string{"[::1]:6379"}}},
		{"redis+sentinel://sentinel1:26379,sentinel2:26379,sentinel3:26379/mymaster/0", redisurl.URL{
			Addrs: []string{"sentinel1:26379", "sentinel2:26379", "sentinel3:26379"}, Sentinel: true, MasterName: "mymaster"}},
		{"redis+sentinel://s1,s2/mymaster", redisurl.URL{Addrs: []string{"s1:26379", "s2:26379"}, Sentinel: true, MasterName: "mymaster"}},
		{"redis+sentinel://app:mpass@s1:26379/mymaster/2?sentinel_username=sen&sentinel_password=sp+a%40ss", redisurl.URL{
			Addrs: []string{"s1:26379"}, Sentinel: true, MasterName: "mymaster", DB: 2,
			Username: "app", Password: "mpass", SentinelUsername: "sen", SentinelPassword: "sp+a@ss"}},
		{"rediss+sentinel://s1:26379/mymaster", redisurl.URL{Addrs: []string{"s1:26379"}, Sentinel: true, TLS: true, MasterName: "mymaster"}},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			got, err := redisurl.Parse(tt.url)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !equal(got, tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func equal(a, b redisurl.URL) bool {
	return slices.Equal(a.Addrs, b.Addrs) && a.TLS == b.TLS && a.Sentinel == b.Sentinel &&
		a.MasterName == b.MasterName && a.DB == b.DB && a.Username == b.Username && a.Password == b.Password &&
		a.SentinelUsername == b.SentinelUsername && a.SentinelPassword == b.SentinelPassword
}

// TestParseErrors: each bad URL carries the secret "hunter2"; the error
// says what is wrong, wraps ErrInvalid and never shows the secret.
func TestParseErrors(t *testing.T) {
	tests := []struct{ url, reason string }{
		{"localhost:6379", "missing scheme"},
		{"http://:hunter2@localhost", `unsupported scheme "http"`},
		{"redis://:hunter2@a:1,b:2/0", "exactly one host"},
		{"redis://:hunter2@localhost:notaport/0", "port must be a number"},
		{"redis://:hunter2@localhost:0/0", "port must be a number"},
		{"redis://:hunter2@[]", "brackets hold an IPv6 address"},
		{"redis://:hunter2@[]:6379", "empty host before the port"},
		{"redis://:hunter2@[name]", "brackets hold an IPv6 address"},
		{"redis://:hunter2@[name]:6379", "brackets hold an IPv6 address"},
		{"redis://:hunter2@[127.0.0.1]:6379", "brackets hold an IPv6 address"},
		{"redis://:hunter2@localhost/x", "database number must be 0 to 15"},
		{"redis://:hunter2@localhost/99", "database number must be 0 to 15"},
		{"redis://:hunter2@localhost/-1", "database number must be 0 to 15"},
		{"redis://:hunter2@/0", "empty host"},
		{"redis://:hunter2%zz@localhost/0", "percent-encoding in the password"},
		{"redis://u:hunter2@localhost/0?password=hunter2", `unknown query parameter "password"`},
		{"redis://u:hunter2@localhost/0?foo=hunter2", `unknown query parameter "foo"`},
		{"redis://u:hunter2@localhost/0?sentinel_password=hunter2", "only for redis+sentinel://"},
		{"redis+sentinel://:hunter2@s1:26379", "needs the master name"},
		{"redis+sentinel://s1:26379/m?sentinel_password=hunter2&x=1", `unknown query parameter "x" (known: sentinel_username, sentinel_password)`},
		{"rediss://:hunter2@127.0.0.1:6379/0?ssl_cert_reqs=none", `unknown query parameter "ssl_cert_reqs" (a rediss:// URL takes none; its TLS settings are the state.redis.tls_* keys)`},
		{"REDIS://:hunter2@127.0.0.1/0?db=1", `unknown query parameter "db" (a redis:// URL takes none)`},
		{"redis+sentinel://s1:26379/m?sentinel_password=hunter2%", "percent-encoding in the query"},
		{"redis+sentinel://s1:26379/m?sentinel_password=hun@ter2", "'@' in the query string"},
		{"redis+sentinel://s1,:26379/m?sentinel_password=hunter2", "host 2 of 2"},
		{"redis://:hun ter2@local host/0", "the host holds a space"},
		{"redis://:pre?hunter2@127.0.0.1:16401/x", "database number"},
		{"redis://incd:Us3r:P@hunter2/w@127.0.0.1:16401/x", "database number"},
		{"redis://:pre/hunter2@127.0.0.1:1:2", "bad host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := redisurl.Parse(tt.url)
			if err == nil {
				t.Fatal("parsed, want an error")
			}
			if !errors.Is(err, redisurl.ErrInvalid) || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q: want ErrInvalid and %q", err, tt.reason)
			}
			if strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "ter2") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

func TestClusterNodes(t *testing.T) {
	got, err := redisurl.ParseClusterNodes([]string{"127.0.0.1:7000", "redis://u2:p%40w@127.0.0.1:7001", "redis://127.0.0.1:7002/0", "u2:p@w@[::1]:7003"})
	if err != nil {
		t.Fatal(err)
	}
	want := redisurl.URL{Addrs: []string{"127.0.0.1:7000", "127.0.0.1:7001", "127.0.0.1:7002", "[::1]:7003"}, Username: "u2", Password: "p@w"}
	if !equal(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// The user "default" is the same as none.
	if got, err := redisurl.ParseClusterNodes([]string{"redis://:pw@a:1", "redis://default:pw@b:2"}); err != nil || got.Password != "pw" {
		t.Errorf("default user vs none: %+v, %v", got, err)
	}
	for _, bad := range []struct {
		nodes  []string
		reason string
	}{
		{nil, "no cluster seed nodes"},
		{[]string{"rediss://a:1", "redis://b:2"}, "mix"},
		{[]string{"redis://:hunter2@a:1/3"}, "no database numbers"},
		{[]string{"redis+sentinel://:hunter2@a/m"}, `unsupported scheme "redis+sentinel"`},
		{[]string{"nohost"}, "needs its port"},
		{[]string{":hunter2@nohost"}, "needs its port"},
		{[]string{"h:70000"}, "port must be a number"},
		{[]string{"u:hunter2@h:1:2"}, "bad host:port"},
		// One set of credentials serves every node: conflicting ones are
		// named by field, never by value.
		{[]string{"redis://:hunter2@a:1", "b:2", "redis://:ClPw@c:3"}, "cluster nodes 1 and 3 give different passwords"},
		{[]string{"redis://u1:hunter2@a:1", "redis://u2:hunter2@b:2"}, "cluster nodes 1 and 2 give different user names;"},
		{[]string{"redis://u1:hunter2@a:1", "redis://:x@b:2"}, "different user names and passwords"},
		{[]string{"redis://:hunter2@a:1", "redis://u:hunter2@b:2"}, "different user names"},
	} {
		_, err := redisurl.ParseClusterNodes(bad.nodes)
		if err == nil || !errors.Is(err, redisurl.ErrInvalid) || !strings.Contains(err.Error(), bad.reason) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%q: err = %v, want ErrInvalid with %q and without the password", bad.nodes, err, bad.reason)
		}
	}
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		// Every form the README shows.
		{"redis://host:6379/0", "redis://host:6379/0"},
		{"redis://:password@host:6379/0", "redis://:xxxxx@host:6379/0"},
		{"redis://user:password@host:6379/0", "redis://user:xxxxx@host:6379/0"},
		{"rediss://user:password@host:6380/0", "rediss://user:xxxxx@host:6380/0"},
		{"redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster/0", "redis+sentinel://s1:26379,s2:26379,s3:26379/mymaster/0"},
		{"redis+sentinel://:mPw@127.0.0.1:26411,127.0.0.1:26412/mymaster/0?sentinel_password=sPw",
			"redis+sentinel://:xxxxx@127.0.0.1:26411,127.0.0.1:26412/mymaster/0?sentinel_password=xxxxx"},
		{"rediss+sentinel://u:p@s1/m?sentinel_username=sen&sentinel_password=sPw",
			"rediss+sentinel://u:xxxxx@s1/m?sentinel_username=sen&sentinel_password=xxxxx"},
		{"redis://127.0.0.1:7000", "redis://127.0.0.1:7000"},
		{"127.0.0.1:7000", "127.0.0.1:7000"},
		{"u:pw@127.0.0.1:7000", "u:xxxxx@127.0.0.1:7000"},
		{"redis://user@host:6379/0", "redis://user@host:6379/0"},
		// Unencoded specials in a password: the last '@' ends it.
		{"redis://:pre?SECRETQ@127.0.0.1:16401/0", "redis://:xxxxx@127.0.0.1:16401/0"},
		{"redis://incd:Us3r:P@ss/w@127.0.0.1:16401/0", "redis://incd:xxxxx@127.0.0.1:16401/0"},
		{"redis://:pre/SECRETTAIL@127.0.0.1:16401/0", "redis://:xxxxx@127.0.0.1:16401/0"},
		{"redis://u:p#w@host:1", "redis://u:xxxxx@host:1"},
		{"redis://:a://b@h", "redis://:xxxxx@h"},
		{"u:a://b@h:1", "u:xxxxx@h:1"},
		{"user://pw@h:1", "user:xxxxx@h:1"},
		// Query parameters: every value but sentinel_username's, whatever
		// the name's case or encoding, known or not.
		{"redis://h/0?Password=a&b=c", "redis://h/0?Password=xxxxx&b=xxxxx"},
		{"redis://h/0?x=1&api_token=t?k=v#f&secret=s", "redis://h/0?x=xxxxx&api_token=xxxxx&secret=xxxxx"},
		{"redis://h/0?sentinel%5Fpassword=s", "redis://h/0?sentinel%5Fpassword=xxxxx"},
		{"redis+sentinel://s1/m?sentinel%5Fusername=sen&Sentinel_Username=x", "redis+sentinel://s1/m?sentinel%5Fusername=sen&Sentinel_Username=xxxxx"},
		{"redis+sentinel://s1:26379/m/0?sentinel_pasword=s3cret", "redis+sentinel://s1:26379/m/0?sentinel_pasword=xxxxx"},
		{"redis://h:6379/0?pasword=x", "redis://h:6379/0?pasword=xxxxx"},
		{"redis://h:6379/0?pwd=x&flag", "redis://h:6379/0?pwd=xxxxx&flag"},
		// No '@' and a port that is no number: a password whose '@' and
		// host are missing; all from it on is hidden.
		{"redis://user:s3cret", "redis://user:xxxxx"},
		{"redis://:s3cret/0", "redis://:xxxxx"},
		{"redis://user:s3/cret/0", "redis://user:xxxxx"},
		{"redis+sentinel://s1:26379,user:s3cret/m", "redis+sentinel://s1:26379,user:xxxxx"},
		{"user:s3cret", "user:xxxxx"},
		{"redis://[::1]:6379/0", "redis://[::1]:6379/0"},
		// An unencoded '@' in a query value: both readings are hidden.
		{"redis+sentinel://s1/m?sentinel_password=a@b", "redis+sentinel://s1/m?sentinel_password=xxxxx"},
		{"redis+sentinel://u:m@s1:26379/m?sentinel_password=a@b", "redis+sentinel://u:xxxxx"},
		// Not even a URL.
		{"redis:/:hunter5@h", "redis:xxxxx@h"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := redisurl.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestMisspeltSecretsNeverShow: the values of query parameters the parser
// does not know (a misspelt sentinel_password is still a password), and a
// password whose '@' and host are missing, never show in an error or a
// redacted string; an unknown parameter's error names it.
func TestMisspeltSecretsNeverShow(t *testing.T) {
	tests := []struct{ url, reason string }{
		{"redis+sentinel://s1:26379,s2:26379/mymaster/0?sentinel_pasword=K3YZ9Q", `unknown query parameter "sentinel_pasword"`},
		{"redis+sentinel://:K3YZ9Q@s1:26379/mymaster/0?sentinel_username=u&sentinel_passwd=K3YZ9Q", `unknown query parameter "sentinel_passwd"`},
		{"redis://h:6379/0?pasword=K3YZ9Q", `unknown query parameter "pasword"`},
		{"redis://h:6379/0?pwd=K3YZ9Q", `unknown query parameter "pwd"`},
		{"rediss://u:K3YZ9Q@h:6379/0?auth=K3YZ9Q", `unknown query parameter "auth"`},
		{"redis://h:6379/0?sentinel_password=K3YZ9Q", "only for redis+sentinel://"},
		{"redis://user:K3YZ9Q", "port must be a number"},
		{"redis://user:K3YZ9Q/0", "port must be a number"},
		{"redis://:K3Y/Z9Q", "empty host before the port"},
		{"redis://:K3Y?Z9Q=1", "empty host before the port"},
		{"redis://h:6379/0?x=1&pwd=c@cK3Y?Z9Q&y=2", "unknown query parameter (a redis:// URL takes none)"},
		{"redis+sentinel://s1/m?x=1&pwd=c@s1/m?Z9Q&y=2", "unknown query parameter (known: sentinel_username, sentinel_password; "},
		{"redis+sentinel://s1:26379,admin:K3YZ9Q/mymaster", "host 2 of 2: the port must be a number"},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			_, err := redisurl.Parse(tt.url)
			if err == nil || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("Parse error %v, want one with %q", err, tt.reason)
			}
			checkNoLeak(t, tt.url, "K3Y", "Z9Q")
		})
	}
}

// forms are every URL form the README shows, with PW where a raw,
// unencoded password goes. In a query value an unencoded '&' cannot be
// told from the next parameter, so those forms get passwords without one
// (the README says to percent-encode it).
var forms = []struct {
	tmpl    string
	inQuery bool
}{
	{"redis://:PW@127.0.0.1:6379/0", false},
	{"redis://user:PW@127.0.0.1:6379/0", false},
	{"redis://user:PW@127.0.0.1:6379/x", false},
	{"redis://user:PW@127.0.0.1:6379/99", false},
	{"redis://user:PW@127.0.0.1:6379/0?foo=bar", false},
	{"redis://user:PW@127.0.0.1:notaport/0", false},
	{"redis://user:PW@a:1,b:2/0", false},
	{"rediss://user:PW@host:6380/0", false},
	{"redis+sentinel://:PW@s1:26379,s2:26379,s3:26379/mymaster/0", false},
	{"redis+sentinel://:PW@s1:26379,s2:26379/mymaster/0?sentinel_password=PW", true},
	{"redis+sentinel://u:m@s1:26379/mymaster/0?sentinel_username=s&sentinel_password=PW", true},
	{"redis+sentinel://u:m@s1:26379/mymaster/0?sentinel_password=PW&x=1", true},
	{"redis+sentinel://u:m@s1:26379/mymaster/x?sentinel_password=PW", true},
	{"rediss+sentinel://:PW@s1:26379/mymaster", false},
	{"user:PW@127.0.0.1:7000", false},
	{"redis://:PW@127.0.0.1:7000", false},
	// Passwords in parameters the parser does not know.
	{"redis+sentinel://s1:26379/mymaster/0?sentinel_pasword=PW", true},
	{"redis+sentinel://s1:26379/mymaster/0?sentinel_username=u&Sentinel_Password=PW", true},
	{"redis://u:m@h:6379/0?pasword=PW", true},
	{"redis://h:6379/0?x=1&pwd=PW&y=2", true},
}

// checkNoLeak parses raw as a URL and as a cluster node and fails when an
// error or the redacted string shows a marker of the password.
func checkNoLeak(t *testing.T, raw string, markers ...string) {
	t.Helper()
	var shown []string
	shown = append(shown, redisurl.Redact(raw))
	if _, err := redisurl.Parse(raw); err != nil {
		shown = append(shown, err.Error())
	}
	if _, err := redisurl.ParseClusterNodes([]string{raw}); err != nil {
		shown = append(shown, err.Error())
	}
	for _, s := range shown {
		for _, m := range markers {
			if strings.Contains(s, m) {
				t.Fatalf("%q shows %q in %q", raw, m, s)
			}
		}
	}
}

// TestRandomPasswordsNeverShow inserts random passwords, raw and full of
// URL delimiters, into every URL form: no error and no redacted string may
// show any piece of them. The pieces are found by two markers between
// random runs of delimiters.
func TestRandomPasswordsNeverShow(t *testing.T) {
	const specials = "@:/?#%&=+ ;,[]!$*~'"
	rnd := rand.New(rand.NewPCG(1, 2))
	piece := func(noAmp bool) string {
		b := make([]byte, rnd.IntN(4))
		for i := range b {
			if rnd.IntN(2) == 0 {
				b[i] = specials[rnd.IntN(len(specials))]
			} else {
				b[i] = "abc019"[rnd.IntN(6)]
			}
			if noAmp && b[i] == '&' {
				b[i] = '='
			}
		}
		return string(b)
	}
	for range 3000 {
		for _, f := range forms {
			pw := piece(f.inQuery) + "K3Y" + piece(f.inQuery) + "Z9Q" + piece(f.inQuery)
			checkNoLeak(t, strings.ReplaceAll(f.tmpl, "PW", pw), "K3Y", "Z9Q")
		}
	}
}

// FuzzPasswordsNeverShow is TestRandomPasswordsNeverShow under the fuzzer:
// go test -fuzz FuzzPasswordsNeverShow ./storage/redis/redisurl
func FuzzPasswordsNeverShow(f *testing.F) {
	for _, s := range []string{"pre?SECRETQ", "Us3r:P@ss/w", "pre/SECRETTAIL", "a#b", "%zz", "x&sentinel_password=y@z"} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, pw string, form uint8) {
		fm := forms[int(form)%len(forms)]
		if fm.inQuery && strings.Contains(pw, "&") {
			return
		}
		checkNoLeak(t, strings.ReplaceAll(fm.tmpl, "PW", "K3Y"+pw+"Z9Q"), "K3Y", "Z9Q")
	})
}
