// Command incidentd is the incident ingestion worker: it pulls incident
// events from NATS JetStream, deduplicates and folds them into incidents,
// commits them to the configured store and serves the query API, metrics and
// health endpoints. With no configuration it runs an embedded nats-server
// and Pebble under ./data.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"

	"go.uber.org/zap"

	"github.com/pelletier/go-toml/v2"

	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/config"
	redisstore "github.com/llm-im/incidentd/storage/redis"
)

// Exit codes.
const (
	exitOK      = 0
	exitRuntime = 1
	exitConfig  = 2
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("incidentd", flag.ContinueOnError)
	// The usage goes to stdout when asked for (-h, --help), to stderr with
	// a usage error: it is written once Parse says which.
	var usage bytes.Buffer
	fs.SetOutput(&usage)
	path := fs.String("config", "", "TOML configuration `file` (defaults and environment overrides apply without it)")
	version := fs.Bool("version", false, "print the version and exit")
	check := fs.Bool("check-config", false, "load and validate the configuration (file, environment, defaults), print it as TOML with secrets masked, and exit: 0 when valid, 2 when not; connects to nothing")
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		_, _ = usage.WriteTo(stdout) // -h and --help print the usage and succeed
		return exitOK
	}
	_, _ = usage.WriteTo(stderr)
	if err != nil {
		return exitConfig
	}
	var blank bool
	fs.Visit(func(f *flag.Flag) { blank = blank || (f.Name == "config" && strings.TrimSpace(*path) == "") })
	if blank {
		// `--config "$CFG"` with CFG unset must not run on the defaults.
		fmt.Fprintf(stderr, "incidentd: --config %q: an empty path (leave the flag out to run on the defaults and the environment)\n", *path)
		return exitConfig
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "incidentd: unexpected argument %q (a configuration file goes after --config)\n", fs.Arg(0))
		fs.SetOutput(stderr)
		fs.Usage()
		return exitConfig
	}
	if *version {
		fmt.Fprintf(stdout, "incidentd %s (%s)\n", app.Version, runtime.Version())
		return exitOK
	}
	cfg, err := config.Load(*path, os.LookupEnv)
	if err != nil {
		var ve *config.ValidationError
		if errors.As(err, &ve) {
			ve.Report(stderr, "incidentd: ")
		} else {
			fmt.Fprintf(stderr, "incidentd: %v\n", err)
		}
		return exitConfig
	}
	if *check {
		return checkConfig(cfg, *path, stdout, stderr)
	}
	log, err := app.NewLogger(cfg.Log)
	if err != nil {
		fmt.Fprintf(stderr, "incidentd: %v\n", err)
		return exitConfig
	}
	// go-redis keeps one logger per process and writes plain lines with the
	// standard log package unless told: the process wires it, once.
	redisstore.RouteClientLogs(log)
	defer func() { _ = log.Sync() }()
	for _, w := range cfg.Warnings {
		log.Warn("config", zap.String("warning", w))
	}
	gc, limit := app.TuneRuntime(cfg, os.LookupEnv)
	log.Info("starting", zap.String("version", app.Version), zap.Any("config", cfg.Redacted()),
		zap.Int("gogc", gc), zap.Int64("gomemlimit_bytes", limit))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	a, err := app.NewContext(ctx, cfg, log, nil)
	if errors.Is(err, app.ErrStartStopped) {
		// Nothing was started: exit 1, as for a start that failed.
		log.Warn("stopped during start-up: the worker did not start", zap.Error(err))
		return exitRuntime
	}
	if err != nil {
		log.Error("start failed", zap.Error(err))
		return exitRuntime
	}
	if err := a.Run(ctx); err != nil {
		log.Error("stopped with error", zap.Error(err))
		return exitRuntime
	}
	log.Info("stopped cleanly")
	return exitOK
}

// checkConfig prints the configuration in force, secrets masked, as a TOML
// document Load reads back (a masked secret reads back as "xxxxx"), and its
// warnings on stderr. It connects to nothing.
func checkConfig(cfg config.Config, path string, stdout, stderr io.Writer) int {
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "incidentd: warning: %s\n", w)
	}
	b, err := toml.Marshal(cfg.Redacted())
	if err != nil {
		fmt.Fprintf(stderr, "incidentd: encode configuration: %v\n", err)
		return exitRuntime
	}
	from := "defaults and environment"
	if path != "" {
		from = path + ", defaults and environment"
	}
	fmt.Fprintf(stdout, "# incidentd %s: configuration is valid (%s); secrets masked as xxxxx\n", app.Version, from)
	_, _ = stdout.Write(b)
	return exitOK
}
