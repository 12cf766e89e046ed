package ctl_test

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"

	"github.com/llm-im/incidentd/ctl"
	"github.com/llm-im/incidentd/natsembed/natstest"
)

// authNATS starts a nats-server that lets in only the user or token of
// opts, and returns its URL (without credentials).
func authNATS(t *testing.T, opts server.Options) string { return natstest.Start(t, opts) }

// withPassword puts user:password into a nats:// URL.
func withPassword(url, user, password string) string {
	return strings.Replace(url, "nats://", "nats://"+user+":"+password+"@", 1)
}

// TestNATSCredentialsFromConfig: setup, publish and bench log in with the
// [nats] credentials of --config, as the worker does with the same file;
// without them the server refuses. The URL comes from the file, or from
// --nats-url or NATS_URL over it.
func TestNATSCredentialsFromConfig(t *testing.T) {
	userURL := authNATS(t, server.Options{Username: "alice", Password: "s3cretpw"})
	tokenURL := authNATS(t, server.Options{Authorization: "t0kensecret"})
	dir := t.TempDir()
	userCfg := filepath.Join(dir, "user.toml")
	writeFile(t, userCfg, "[nats]\nurl = \""+userURL+"\"\nuser = \"alice\"\npassword = \"s3cretpw\"\n")
	tokenCfg := filepath.Join(dir, "token.toml")
	writeFile(t, tokenCfg, "[nats]\ntoken = \"t0kensecret\"\n") // the URL from --nats-url or NATS_URL

	commands := [][]string{
		{"setup"},
		{"publish", "--generate", "50"},
		{"bench", "--events", "200", "--rate", "0", "-o", "json"},
	}
	auths := []struct {
		name string
		cfg  string
		env  map[string]string
		args []string
	}{
		{"user and password, URL from the file", userCfg, nil, nil},
		{"token, URL from --nats-url", tokenCfg, nil, []string{"--nats-url", tokenURL}},
		{"token, URL from NATS_URL", tokenCfg, map[string]string{"NATS_URL": tokenURL}, nil},
	}
	for _, a := range auths {
		for _, cmd := range commands {
			t.Run(a.name+"/"+cmd[0], func(t *testing.T) {
				args := append(append(append([]string{}, cmd...), a.args...), "--config", a.cfg)
				r := runCtl(t, a.env, "", args...)
				mustCode(t, r, ctl.ExitOK)
				if cmd[0] == "publish" && !strings.Contains(r.out, "published 50 events: 50 acked") {
					t.Errorf("publish: %s", r.out)
				}
				// The same command without the file's credentials is refused.
				url := userURL
				if a.cfg == tokenCfg {
					url = tokenURL
				}
				r = runCtl(t, nil, "", append(append([]string{}, cmd...), "--nats-url", url)...)
				mustCode(t, r, ctl.ExitError)
				if !strings.Contains(r.err, "Authorization Violation") {
					t.Errorf("stderr %q: want Authorization Violation", r.err)
				}
			})
		}
	}
}

// TestNATSPasswordNeverPrinted: a password in the NATS URL is masked in
// everything incidentctl prints (errors, summaries, bench JSON), when the
// server is unreachable, refuses the password, or accepts it.
func TestNATSPasswordNeverPrinted(t *testing.T) {
	url := authNATS(t, server.Options{Username: "alice", Password: "s3cretpw"})
	cases := []struct {
		name string
		url  string
		args []string
		code int
		want string // in stderr, or stdout when the command succeeds
	}{
		{"publish unreachable", "nats://alice:s3cretpw@127.0.0.1:1", []string{"publish", "--generate", "1"}, ctl.ExitError,
			"incidentctl: nats connect nats://alice:xxxxx@127.0.0.1:1 (NATS_URL): nats: no servers available for connection"},
		{"setup unreachable", "nats://alice:s3cretpw@127.0.0.1:1", []string{"setup"}, ctl.ExitError, "nats://alice:xxxxx@127.0.0.1:1 (NATS_URL)"},
		{"bench unreachable", "nats://alice:s3cretpw@127.0.0.1:1", []string{"bench", "--events", "10"}, ctl.ExitError, "nats://alice:xxxxx@127.0.0.1:1 (NATS_URL)"},
		// NATS_URL is configuration (as for setup and the worker): checked, masked, exit 2.
		{"publish unparsable", "nats://alice:s3cretpw%@127.0.0.1:1", []string{"publish", "--generate", "1"}, ctl.ExitUsage, `NATS_URL (nats.url): not a valid server URL: "nats://alice:xxxxx@127.0.0.1:1"`},
		{"publish wrong password", withPassword(url, "alice", "s3cretpwX"), []string{"publish", "--generate", "1"}, ctl.ExitError, "Authorization Violation"},
		{"setup wrong password", withPassword(url, "alice", "s3cretpwX"), []string{"setup"}, ctl.ExitError, "Authorization Violation"},
		{"bench wrong password", withPassword(url, "alice", "s3cretpwX"), []string{"bench", "--events", "10"}, ctl.ExitError, "Authorization Violation"},
		{"setup", withPassword(url, "alice", "s3cretpw"), []string{"setup"}, ctl.ExitOK, "stream INCIDENTS"},
		{"publish", withPassword(url, "alice", "s3cretpw"), []string{"publish", "--generate", "10"}, ctl.ExitOK, "published 10 events"},
		{"bench", withPassword(url, "alice", "s3cretpw"), []string{"bench", "--events", "200", "--rate", "0", "-o", "json"}, ctl.ExitOK, `"nats": "nats://alice:xxxxx@`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := runCtl(t, map[string]string{"NATS_URL": c.url}, "", c.args...)
			mustCode(t, r, c.code)
			if strings.Contains(r.out+r.err, "s3cretpw") {
				t.Fatalf("the password was printed:\nstdout: %s\nstderr: %s", r.out, r.err)
			}
			got := r.err
			if c.code == ctl.ExitOK {
				got = r.out
			}
			if !strings.Contains(got, c.want) {
				t.Errorf("output %q: want %q", got, c.want)
			}
		})
	}
}

// TestBenchJSONProblemsEmpty: off a terminal bench prints JSON by default,
// and a run without problems lists none as [] (not null).
func TestBenchJSONProblemsEmpty(t *testing.T) {
	r := runCtl(t, map[string]string{"NATS_URL": embeddedNATS(t)}, "", "bench", "--events", "200", "--rate", "0")
	mustCode(t, r, ctl.ExitOK)
	var res struct {
		NATS  string `json:"nats"`
		Check struct {
			Problems *[]string `json:"problems"`
		} `json:"check"`
	}
	if err := json.Unmarshal([]byte(r.out), &res); err != nil {
		t.Fatalf("not JSON off a terminal: %v\n%s", err, r.out)
	}
	if res.Check.Problems == nil || len(*res.Check.Problems) != 0 {
		t.Errorf("problems %v, want []", res.Check.Problems)
	}
	if res.NATS == "embedded" || res.NATS == "" {
		t.Errorf("nats %q: NATS_URL was not used", res.NATS)
	}
}

// TestEmbeddedListenFollowed: with no URL anywhere, setup and publish go to
// the embedded server the configuration describes (NATS_EMBEDDED_LISTEN,
// nats.embedded_listen), where a worker on that configuration listens, not
// to the default port.
func TestEmbeddedListenFollowed(t *testing.T) {
	url := embeddedNATS(t)
	env := map[string]string{"NATS_EMBEDDED_LISTEN": strings.TrimPrefix(url, "nats://")}
	mustCode(t, runCtl(t, env, "", "setup"), ctl.ExitOK)
	mustCode(t, runCtl(t, env, "", "publish", "--generate", "10", "--duplicates", "0"), ctl.ExitOK)
	if n := streamMsgs(t, jsFor(t, url), "INCIDENTS"); n != 10 {
		t.Fatalf("stream holds %d, want 10", n)
	}
}

// TestNATSCredentialsConflict: a URL carrying credentials (--nats-url, or
// NATS_URL) beside a --config whose [nats] table sets credentials too is a
// usage error naming both, for every command that connects, before any
// connection and without the secrets, as incidentd refuses the same
// (NATS_URL against the file: an invalid configuration, exit 2).
func TestNATSCredentialsConflict(t *testing.T) {
	dir := t.TempDir()
	userCfg := filepath.Join(dir, "user.toml")
	writeFile(t, userCfg, "[nats]\nuser = \"alice\"\npassword = \"f1lepw\"\n")
	tokenCfg := filepath.Join(dir, "token.toml")
	writeFile(t, tokenCfg, "[nats]\ntoken = \"f1letok\"\n")
	creds := filepath.Join(dir, "alice.creds")
	writeFile(t, creds, "-----BEGIN NATS USER JWT-----\neyJ0.x.y\n------END NATS USER JWT------\n")
	credsCfg := filepath.Join(dir, "creds.toml")
	writeFile(t, credsCfg, "[nats]\ncredentials_file = \""+creds+"\"\n")
	user, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := user.Seed()
	seedFile := filepath.Join(dir, "user.nk")
	writeFile(t, seedFile, string(seed)+"\n")
	seedCfg := filepath.Join(dir, "seed.toml")
	writeFile(t, seedCfg, "[nats]\nnkey_seed_file = \""+seedFile+"\"\n")
	commands := [][]string{{"setup"}, {"publish", "--generate", "1"}, {"bench", "--events", "10"}}
	for _, c := range []struct {
		name, cfg, url, shown, keys string
	}{
		{"user and password", userCfg, "nats://bob:ur1pw@127.0.0.1:1", "nats://bob:xxxxx@127.0.0.1:1", "nats.user and nats.password"},
		{"token", tokenCfg, "nats://ur1tok@127.0.0.1:1", "nats://xxxxx@127.0.0.1:1", "nats.token"},
		{"credentials file", credsCfg, "nats://127.0.0.1:2,nats://bob:ur1pw@127.0.0.1:1", "nats://bob:xxxxx@127.0.0.1:1", "nats.credentials_file"},
		{"nkey seed file", seedCfg, "nats://bob:ur1pw@127.0.0.1:1", "nats://bob:xxxxx@127.0.0.1:1", "nats.nkey_seed_file"},
	} {
		for _, cmd := range commands {
			t.Run(c.name+"/"+cmd[0], func(t *testing.T) {
				r := runCtl(t, nil, "", append(append([]string{}, cmd...), "--config", c.cfg, "--nats-url", c.url)...)
				mustCode(t, r, ctl.ExitUsage)
				want := `--nats-url "` + c.shown + `" carries credentials, and so does the [nats] table of ` + c.cfg + " (" + c.keys + "): choose one authentication method"
				if !strings.Contains(r.err, want) {
					t.Errorf("stderr %q, want %q", r.err, want)
				}
				if strings.Contains(r.err+r.out, "ur1") || strings.Contains(r.err+r.out, "f1le") || strings.Contains(r.err, "nats connect") {
					t.Errorf("a secret printed, or a connection tried:\n%s", r.err)
				}
				// From NATS_URL: setup and publish load it into the
				// configuration, whose check (incidentd's) refuses it;
				// bench, which reads it for its own connection only, the
				// same way as --nats-url.
				r = runCtl(t, map[string]string{"NATS_URL": c.url}, "", append(append([]string{}, cmd...), "--config", c.cfg)...)
				mustCode(t, r, ctl.ExitUsage)
				want = `NATS_URL (nats.url): "` + c.shown + `" carries credentials and nats.user, nats.token, nats.credentials_file or nats.nkey_seed_file is set too`
				if cmd[0] == "bench" {
					want = `NATS_URL "` + c.shown + `" carries credentials, and so does the [nats] table of ` + c.cfg
				}
				if !strings.Contains(r.err, want) || strings.Contains(r.err+r.out, "ur1") {
					t.Errorf("stderr %q, want %q", r.err, want)
				}
			})
		}
	}
}
