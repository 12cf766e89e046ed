package app_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"go.uber.org/zap/zaptest"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
)

// testPKI is a CA and the server and client certificates it signed, as
// PEM files in a temporary directory.
type testPKI struct {
	ca, serverCert, serverKey, clientCert, clientKey string
	pool                                             *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Now()
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, name string, usage x509.ExtKeyUsage) (string, string) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"nats.test"}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kder)
	}
	p := testPKI{ca: write("ca.pem", "CERTIFICATE", caDER), pool: x509.NewCertPool()}
	p.pool.AddCert(caCert)
	p.serverCert, p.serverKey = leaf(2, "server", x509.ExtKeyUsageServerAuth)
	p.clientCert, p.clientKey = leaf(3, "client", x509.ExtKeyUsageClientAuth)
	return p
}

// startTLSNATS runs a nats-server requiring TLS (and a client certificate
// signed by the CA when mutual) and returns its tls:// URL.
func startTLSNATS(t *testing.T, p testPKI, mutual bool) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(p.serverCert, p.serverKey)
	if err != nil {
		t.Fatal(err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if mutual {
		tc.ClientCAs, tc.ClientAuth = p.pool, tls.RequireAndVerifyClientCert
	}
	s := startNATS(t, server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, TLS: true, TLSVerify: mutual,
		TLSConfig: tc, TLSTimeout: 2, JetStream: true, StoreDir: t.TempDir()})
	return "tls://" + s.Addr().String()
}

// TestNATSTLS: nats.tls_ca_file makes a TLS server's certificate trusted;
// without it the connection fails naming the certificate; a mutual-TLS
// server lets in the client with nats.tls_cert_file and nats.tls_key_file
// only; nats.tls_server_name is the name checked.
func TestNATSTLS(t *testing.T) {
	p := newTestPKI(t)
	url := startTLSNATS(t, p, false)
	mtlsURL := startTLSNATS(t, p, true)
	cases := []struct {
		name    string
		url     string
		n       config.NATSConfig
		wantErr string
	}{
		{"ca", url, config.NATSConfig{TLSCAFile: p.ca}, ""},
		{"no ca", url, config.NATSConfig{}, "certificate signed by unknown authority"},
		{"server name", url, config.NATSConfig{TLSCAFile: p.ca, TLSServerName: "nats.test"}, ""},
		{"wrong server name", url, config.NATSConfig{TLSCAFile: p.ca, TLSServerName: "other.test"}, "other.test"},
		{"mtls", mtlsURL, config.NATSConfig{TLSCAFile: p.ca, TLSCertFile: p.clientCert, TLSKeyFile: p.clientKey}, ""},
		// With TLS 1.3 the server refuses the missing certificate after the
		// client's handshake ended: "remote error: tls: certificate
		// required" or "nats: tls error: connection closed by remote".
		{"mtls without client cert", mtlsURL, config.NATSConfig{TLSCAFile: p.ca}, "tls"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.n.Name = "test"
			nc, err := nats.Connect(c.url, append(app.NATSOptions(c.n), nats.Timeout(3*time.Second), nats.MaxReconnects(0))...)
			if c.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				if err := nc.Flush(); err != nil {
					t.Fatal(err)
				}
				if !nc.TLSRequired() {
					t.Error("not TLS")
				}
				return
			}
			if err == nil {
				// A refused client certificate may surface at the first
				// round trip instead of the handshake.
				err = nc.Flush()
				nc.Close()
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("error %v, want %q", err, c.wantErr)
			}
		})
	}
}

// TestNATSWorkerTLS: a whole worker connects to a mutual-TLS server with
// the [nats] tls files.
func TestNATSWorkerTLS(t *testing.T) {
	p := newTestPKI(t)
	cfg := testConfig(t, config.BackendMemory)
	cfg.NATS.URL = startTLSNATS(t, p, true)
	cfg.NATS.TLSCAFile, cfg.NATS.TLSCertFile, cfg.NATS.TLSKeyFile = p.ca, p.clientCert, p.clientKey
	a, err := app.New(cfg, zaptest.NewLogger(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	release(t, a)
	cfg.NATS.TLSCertFile, cfg.NATS.TLSKeyFile = "", ""
	if a, err := app.New(cfg, zaptest.NewLogger(t), nil); err == nil {
		release(t, a)
		t.Fatal("connected without a client certificate")
	}
}

// TestNATSPingOptions: nats.ping_interval and nats.max_pings_outstanding
// reach the connection, and a server that stops answering (a proxy that
// stops forwarding) is found within about interval × (outstanding + 1).
func TestNATSPingOptions(t *testing.T) {
	s := startNATS(t, server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true})
	px := newStallProxy(t, s.Addr().String())
	n := config.Default().NATS
	n.PingInterval, n.MaxPingsOutstanding = config.Duration{Duration: time.Second}, 1
	lost := make(chan error, 1)
	nc, err := nats.Connect("nats://"+px.addr(), append(app.NATSOptions(n),
		nats.MaxReconnects(0), nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			select {
			case lost <- err:
			default:
			}
		}))...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if nc.Opts.PingInterval != time.Second || nc.Opts.MaxPingsOut != 1 {
		t.Fatalf("ping interval %s, max pings out %d", nc.Opts.PingInterval, nc.Opts.MaxPingsOut)
	}
	if d := config.Default().NATS; d.PingInterval.Duration != 10*time.Second || d.MaxPingsOutstanding != 3 {
		t.Errorf("defaults %s, %d", d.PingInterval, d.MaxPingsOutstanding)
	}
	start := time.Now()
	px.stall()
	select {
	case err := <-lost:
		if !errors.Is(err, nats.ErrStaleConnection) {
			t.Errorf("disconnected with %v, want a stale connection", err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Errorf("found after %s", took)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("stalled server not detected in 10 s")
	}
}

// stallProxy forwards TCP to a server until stall, then keeps the
// connections open and forwards nothing, as a frozen server would.
type stallProxy struct {
	ln      net.Listener
	stalled atomic.Bool
	mu      sync.Mutex
	conns   []net.Conn
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln}
	t.Cleanup(func() {
		_ = ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			p.mu.Unlock()
			go p.pipe(c, s)
			go p.pipe(s, c)
		}
	}()
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

func (p *stallProxy) stall() { p.stalled.Store(true) }

func (p *stallProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32*1024)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.stalled.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
