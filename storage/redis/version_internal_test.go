package redis

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/storage/redis/redistest"
	"github.com/llm-im/incidentd/storage/storetest"
)

func TestParseVersion(t *testing.T) {
	for _, c := range []struct {
		in   string
		want version
	}{
		{"7.0.15", version{7, 0, 15}},
		{"5.0.0", version{5, 0, 0}},
		{"6.2", version{6, 2, 0}},
		{"5.0.14-rc1", version{5, 0, 14}},
		{" 6.0.6\r", version{6, 0, 6}},
		{"255.255.255", version{255, 255, 255}},
	} {
		got, err := parseVersion(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseVersion(%q) = %v, %v; want %v", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "7", "x.y.z", "7.x.1", "7-rc.0.1", "7..1"} {
		if v, err := parseVersion(bad); err == nil {
			t.Errorf("parseVersion(%q) = %v, want an error", bad, v)
		}
	}
}

func TestInfoVersion(t *testing.T) {
	info := "# Server\r\nredis_version:6.2.14\r\nredis_git_sha1:00000000\r\nredis_mode:cluster\r\n"
	if v, err := infoVersion(info); err != nil || v != (version{6, 2, 14}) {
		t.Errorf("infoVersion = %v, %v", v, err)
	}
	if _, err := infoVersion("# Server\r\nredis_mode:standalone\r\n"); err == nil {
		t.Error("infoVersion without redis_version: no error")
	}
}

// TestFeatures: which variant each version gets.
func TestFeatures(t *testing.T) {
	for _, c := range []struct {
		v                   string
		zmscore, sintercard bool
	}{
		{"5.0.0", false, false},
		{"5.0.14", false, false},
		{"6.0.20", false, false},
		{"6.1.9", false, false},
		{"6.2.0", true, false},
		{"6.2.14", true, false},
		{"7.0.0", true, true},
		{"7.0.15", true, true},
		{"7.2.4", true, true},
		{"8.0.1", true, true},
		{"10.0.0", true, true},
	} {
		v, err := parseVersion(c.v)
		if err != nil {
			t.Fatal(err)
		}
		f := featuresOf(v)
		if f.zmscore != c.zmscore || f.sintercard != c.sintercard {
			t.Errorf("%s: %+v, want zmscore %v sintercard %v", c.v, f, c.zmscore, c.sintercard)
		}
	}
	for _, c := range []struct {
		v, o string
		want bool
	}{
		{"5.0.0", "5.0.0", true}, {"4.0.14", "5.0.0", false}, {"5.0.0", "6.0.0", false},
		{"6.0.0", "6.0.0", true}, {"5.9.9", "6.0.0", false}, {"10.0.0", "6.2.0", true}, {"6.10.0", "6.2.0", true},
	} {
		v, _ := parseVersion(c.v)
		o, _ := parseVersion(c.o)
		if got := v.atLeast(o); got != c.want {
			t.Errorf("%s.atLeast(%s) = %v", c.v, c.o, got)
		}
	}
}

// TestVersionChecks on a real (7.0) server, as if it had reported another
// version: refused below 5.0, an ACL user refused below 6.0, the variants
// picked by version.
func TestVersionChecks(t *testing.T) {
	srv := redistest.StartStandalone(t, redistest.Options{})
	acl := redistest.StartStandalone(t, redistest.Options{ACLUser: "worker", ACLPassword: "acl-s3cret"})
	open := func(cfg Config) (*Store, error) {
		s, err := New(cfg, zaptest.NewLogger(t), prometheus.NewRegistry())
		if err == nil {
			t.Cleanup(func() { _ = s.Close() })
		}
		return s, err
	}
	_, err := open(Config{URL: srv.URL(), asIfVersion: "4.0.14"})
	if err == nil || !strings.Contains(err.Error(), "Redis 4.0.14") || !strings.Contains(err.Error(), "5.0 or later") {
		t.Errorf("4.0.14: %v", err)
	}
	_, err = open(Config{URL: acl.URL(), asIfVersion: "5.0.14"})
	if err == nil || !strings.Contains(err.Error(), `ACL user ("worker")`) || !strings.Contains(err.Error(), "Redis 5.0.14") ||
		!strings.Contains(err.Error(), "6.0 or later") {
		t.Errorf("ACL user on 5.0.14: %v", err)
	}
	if strings.Contains(fmt.Sprint(err), "acl-s3cret") {
		t.Errorf("the error shows the password: %v", err)
	}
	for v, want := range map[string]features{
		"5.0.0": {}, "6.0.0": {}, "6.2.0": {zmscore: true}, "": {zmscore: true, sintercard: true},
	} {
		s, err := open(Config{URL: srv.URL(), asIfVersion: v})
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		if s.feat != want {
			t.Errorf("as if %q: %+v, want %+v", v, s.feat, want)
		}
	}
	if s, err := open(Config{URL: acl.URL(), asIfVersion: "6.0.0"}); err != nil || s.feat != (features{}) {
		t.Errorf("ACL user on 6.0.0: %v", err)
	}

	// A user that may not run INFO: the store opens on the commands of
	// 5.0, and works.
	noinfo := redistest.StartStandalone(t, redistest.Options{Extra: []string{"user noinfo on >pw ~* &* +@all -info"}})
	s, err := open(Config{URL: "redis://noinfo:pw@" + noinfo.Addr + "/0", KeyPrefix: "ni"})
	if err != nil {
		t.Fatal(err)
	}
	if s.feat != (features{}) {
		t.Errorf("without INFO: %+v", s.feat)
	}
	all := storetest.Population(40, 2)
	storetest.Put(t, s, all...)
	storetest.CheckFilters(t, s, all)
}

// oldServer answers the handshake as Redis before 6.0 does: no HELLO, AUTH
// with the password only, INFO server with its version (after AUTH when
// it has a password). Anything else is an unknown command.
type oldServer struct {
	version, password string
	l                 net.Listener
	wg                sync.WaitGroup
}

func startOldServer(t *testing.T, version, password string) *oldServer {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := &oldServer{version: version, password: password, l: l}
	o.wg.Add(1)
	go func() {
		defer o.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			o.wg.Add(1)
			go func() {
				defer o.wg.Done()
				defer c.Close()
				o.serve(c)
			}()
		}
	}()
	t.Cleanup(func() { l.Close(); o.wg.Wait() })
	return o
}

func (o *oldServer) url(userinfo string) string {
	return "redis://" + userinfo + o.l.Addr().String() + "/0"
}

func (o *oldServer) serve(c net.Conn) {
	r := bufio.NewReader(c)
	authed := o.password == ""
	for {
		args, err := readCommand(r)
		if err != nil {
			return
		}
		var reply string
		switch name := strings.ToUpper(args[0]); {
		case name == "AUTH" && len(args) == 2:
			if args[1] == o.password {
				authed, reply = true, "+OK\r\n"
			} else {
				reply = "-ERR invalid password\r\n"
			}
		case name == "AUTH":
			reply = "-ERR wrong number of arguments for 'auth' command\r\n"
		case !authed:
			reply = "-NOAUTH Authentication required.\r\n"
		case name == "PING":
			reply = "+PONG\r\n"
		case name == "SRANDMEMBER": // the look for the old system's records: none
			reply = "*0\r\n"
		case name == "INFO":
			body := "# Server\r\nredis_version:" + o.version + "\r\nredis_mode:standalone\r\n"
			reply = "$" + strconv.Itoa(len(body)) + "\r\n" + body + "\r\n"
		default:
			reply = "-ERR unknown command '" + args[0] + "'\r\n"
		}
		if _, err := io.WriteString(c, reply); err != nil {
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings.
func readCommand(r *bufio.Reader) ([]string, error) {
	line := func() (string, error) {
		l, err := r.ReadString('\n')
		return strings.TrimRight(l, "\r\n"), err
	}
	h, err := line()
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(h, "*") {
		return nil, errors.New("not an array: " + h)
	}
	n, err := strconv.Atoi(h[1:])
	if err != nil || n < 1 {
		return nil, fmt.Errorf("bad array header %q", h)
	}
	args := make([]string, n)
	for i := range args {
		h, err := line()
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimPrefix(h, "$"))
		if err != nil {
			return nil, fmt.Errorf("bad bulk header %q", h)
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		args[i] = string(buf[:size])
	}
	return args, nil
}

// TestOldServers: what New says to servers that answer the handshake as
// those before 6.0 do (go-redis falls back from HELLO to AUTH), from the
// version INFO server reports.
func TestOldServers(t *testing.T) {
	newErr := func(url string) error {
		s, err := New(Config{URL: url, DialTimeout: 2e9}, zaptest.NewLogger(t), prometheus.NewRegistry())
		if err == nil {
			s.Close()
			return errors.New("opened")
		}
		t.Log(err)
		return err
	}
	t.Run("4.0 refused", func(t *testing.T) {
		o := startOldServer(t, "4.0.14", "")
		err := newErr(o.url(""))
		if !strings.Contains(err.Error(), "the server is Redis 4.0.14; incidentd needs Redis 5.0 or later") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("4.0 with requirepass refused", func(t *testing.T) {
		o := startOldServer(t, "4.0.14", "pw")
		err := newErr(o.url(":pw@"))
		if !strings.Contains(err.Error(), "the server is Redis 4.0.14") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("ACL user on 5.0", func(t *testing.T) {
		o := startOldServer(t, "5.0.14", "pw")
		err := newErr(o.url("worker:pw@"))
		if !strings.Contains(err.Error(), `an ACL user ("worker") needs Redis 6.0 or later, but the server is Redis 5.0.14;`) {
			t.Errorf("got %v", err)
		}
		if strings.Contains(err.Error(), "pw@") || strings.Contains(err.Error(), ":pw") {
			t.Errorf("the error shows the password: %v", err)
		}
	})
	t.Run("ACL user on 5.0 with another password", func(t *testing.T) {
		// The password-only probe fails as well: the AUTH error is the
		// evidence.
		o := startOldServer(t, "5.0.14", "pw")
		err := newErr(o.url("worker:other@"))
		if !strings.Contains(err.Error(), `an ACL user ("worker") needs Redis 6.0 or later, but the server refused AUTH with a user name`) ||
			!strings.Contains(err.Error(), "6.0 or later") {
			t.Errorf("got %v", err)
		}
	})
	t.Run("5.0 gets past the version check", func(t *testing.T) {
		// The fake knows no scripts: New fails at the layout upgrade,
		// after the version check.
		o := startOldServer(t, "5.0.14", "")
		err := newErr(o.url(""))
		if !strings.Contains(err.Error(), "upgrade of the key layout") {
			t.Errorf("got %v", err)
		}
	})
}
