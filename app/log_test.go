package app_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
)

// A logger writing to a file or a buffer never writes colour codes: the
// console format is plain there, and auto is JSON.
func TestLoggerOffTerminal(t *testing.T) {
	file := func(t *testing.T) (io.Writer, func() string) {
		f, err := os.Create(filepath.Join(t.TempDir(), "stderr.log"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = f.Close() })
		return f, func() string {
			b, err := os.ReadFile(f.Name())
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
	}
	buffer := func(*testing.T) (io.Writer, func() string) {
		var b bytes.Buffer
		return &b, b.String
	}
	cases := []struct {
		name   string
		format string
		out    func(*testing.T) (io.Writer, func() string)
		json   bool
	}{
		{"console to a file", config.LogFormatConsole, file, false},
		{"console to a buffer", config.LogFormatConsole, buffer, false},
		{"auto to a file", config.LogFormatAuto, file, true},
		{"json to a file", "json", file, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w, read := c.out(t)
			log, err := app.NewLoggerTo(config.LogConfig{Level: "info", Format: c.format}, w)
			if err != nil {
				t.Fatal(err)
			}
			log.Info("hello", zap.String("k", "v"))
			log.Warn("careful")
			_ = log.Sync()
			got := read()
			if strings.Contains(got, "\x1b[") {
				t.Fatalf("escape codes off a terminal: %q", got)
			}
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("%d lines, want 2: %q", len(lines), got)
			}
			var m map[string]any
			isJSON := json.Unmarshal([]byte(lines[0]), &m) == nil
			if isJSON != c.json {
				t.Fatalf("JSON %t, want %t: %q", isJSON, c.json, lines[0])
			}
			if c.json && (m["level"] != "info" || m["msg"] != "hello" || m["time"] == nil) {
				t.Errorf("JSON line %v", m)
			}
			if !c.json && (!strings.Contains(lines[0], "\tINFO\t") || !strings.Contains(lines[1], "\tWARN\t")) {
				t.Errorf("console lines %q", lines)
			}
		})
	}
}

// TestJSONDurationsAreStrings: durations in JSON log lines read as the
// configuration writes them ("1.5s"), not as a number of seconds.
func TestJSONDurationsAreStrings(t *testing.T) {
	var b bytes.Buffer
	log, err := app.NewLoggerTo(config.LogConfig{Level: "info", Format: "json"}, &b)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("shutdown: store closed", zap.Duration("took", 1500*time.Millisecond))
	if !strings.Contains(b.String(), `"took":"1.5s"`) {
		t.Fatalf("duration not a string: %s", b.String())
	}
}

// TestErrorLinesCarryNoStack: an error line (an expected failure, such as
// NATS unreachable at start) is one line with no Go stack trace, in either
// format; a DPanic, a bug, still carries one.
func TestErrorLinesCarryNoStack(t *testing.T) {
	for _, format := range []string{config.LogFormatConsole, "json"} {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			log, err := app.NewLoggerTo(config.LogConfig{Level: "info", Format: format}, &b)
			if err != nil {
				t.Fatal(err)
			}
			log.Error("start failed", zap.Error(errors.New("nats connect nats://127.0.0.1:1: no servers")))
			if got := b.String(); strings.Count(got, "\n") != 1 || strings.Contains(got, "stacktrace") {
				t.Fatalf("error line with a stack trace: %q", got)
			}
			b.Reset()
			log.DPanic("bug")
			if got := b.String(); strings.Count(got, "\n") < 2 && !strings.Contains(got, "stacktrace") {
				t.Fatalf("DPanic line without a stack trace: %q", got)
			}
		})
	}
}
