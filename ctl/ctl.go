// Package ctl implements incidentctl, the operator CLI of incidentd: it
// publishes events onto the incident stream (publish), queries incidents
// through a running worker's API or directly from a store (get, list,
// count), sets an incident's state as an operator (set-state), prepares
// JetStream (setup), moves and checks stored incidents
// (migrate, export, import, verify, backup, restore), deletes incidents past
// a retention (prune) and measures the whole pipeline
// end to end (bench). cmd/incidentctl is a thin main around Run.
package ctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"

	"github.com/llm-im/incidentd/api"
	"github.com/llm-im/incidentd/app"
	"github.com/llm-im/incidentd/incident"
	"github.com/llm-im/incidentd/storage"
	redisstore "github.com/llm-im/incidentd/storage/redis"
)

// Exit codes of incidentctl.
const (
	// ExitOK: the command did what was asked.
	ExitOK = 0
	// ExitError: any failure (unreachable server, unacked publishes, a
	// failed write).
	ExitError = 1
	// ExitUsage: the command line itself is wrong, or the configuration it
	// names cannot be read or is invalid.
	ExitUsage = 2
	// ExitNotFound: get found no incident with that id.
	ExitNotFound = 3
	// ExitInconsistent: verify found records and indexes that disagree.
	ExitInconsistent = 4
	// ExitRefused: set-state asked for a change the incident lifecycle
	// refuses (an *incident.TransitionError).
	ExitRefused = 5
)

// ErrInconsistent is returned by verify when the store disagrees with
// itself. Run prints it after "incidentctl: ", so it carries no package
// prefix of its own.
var ErrInconsistent = errors.New("store is inconsistent")

// errUsage marks command-line mistakes.
var errUsage = errors.New("usage")

// IO is where a command reads and writes, and its environment.
type IO struct {
	In       io.Reader
	Out, Err io.Writer
	// Env looks up environment variables (os.LookupEnv in main).
	Env func(string) (string, bool)
}

// terminal reports whether w is a terminal (progress lines and tables).
func terminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (o IO) env(k string) string {
	if o.Env == nil {
		return ""
	}
	v, _ := o.Env(k)
	return v
}

// Run executes incidentctl with args (without the program name) and returns
// the exit code. ctx ends the command early (main cancels it on SIGINT and
// SIGTERM).
func Run(ctx context.Context, args []string, o IO) int {
	root := newRoot(o)
	root.SetArgs(args)
	root.SetIn(o.In)
	root.SetOut(o.Out)
	root.SetErr(o.Err)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	if reportConfig(o.Err, err) {
		return ExitUsage
	}
	fmt.Fprintf(o.Err, "incidentctl: %v\n", err)
	if errors.Is(err, api.ErrNotAPI) {
		fmt.Fprintln(o.Err, "incidentctl: hint: give the worker's base URL, such as http://127.0.0.1:8080 (no path after it)")
	}
	var refused *incident.TransitionError
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return ExitNotFound
	case errors.As(err, &refused):
		return ExitRefused
	case errors.Is(err, ErrInconsistent):
		return ExitInconsistent
	case errors.Is(err, errUsage), unknownCommand(err):
		return ExitUsage
	}
	return ExitError
}

type rootFlags struct {
	logLevel string
}

func newRoot(o IO) *cobra.Command {
	var rf rootFlags
	root := &cobra.Command{
		Use:           "incidentctl",
		Short:         "Operate incidentd: publish events, query incidents, set states, prune old incidents, set up JetStream, read and replay dead letters, migrate stores, benchmark",
		Version:       app.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	// A command line without a command is a usage error: help on stderr,
	// exit 2 (--help and help still print it on stdout, exit 0).
	root.RunE = func(cmd *cobra.Command, _ []string) error {
		cmd.SetOut(o.Err)
		_ = cmd.Help()
		return fmt.Errorf("%w: no command given", errUsage)
	}
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error { return blankConfigFlag(cmd.Flags()) }
	root.SetVersionTemplate("incidentctl {{.Version}} (" + runtime.Version() + ")\n")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fmt.Errorf("%w: %w", errUsage, err) })
	root.PersistentFlags().StringVar(&rf.logLevel, "log-level", "warn", "log level of the CLI and of an in-process worker (debug, info, warn, error)")
	logger := func() *zap.Logger {
		log := newLogger(o.Err, rf.logLevel)
		redisstore.RouteClientLogs(log) // else go-redis prints plain lines of its own on stderr
		return log
	}
	root.AddCommand(
		newPublishCmd(o, logger),
		newGetCmd(o, logger), newListCmd(o, logger), newCountCmd(o, logger),
		newSetStateCmd(o, logger),
		newSetupCmd(o, logger), newDLQCmd(o, logger),
		newMigrateCmd(o, logger), newExportCmd(o, logger), newImportCmd(o, logger),
		newVerifyCmd(o, logger), newBackupCmd(o, logger), newRestoreCmd(o, logger),
		newPruneCmd(o, logger),
		newBenchCmd(o, logger),
	)
	usageArgs(root)
	return root
}

// blankConfigFlag refuses a config flag (--config, --from-config,
// --to-config) given an empty path: `--config "$CFG"` with CFG unset
// would otherwise run on the defaults and the environment without a word.
func blankConfigFlag(fs *pflag.FlagSet) error {
	var err error
	fs.Visit(func(f *pflag.Flag) {
		if err == nil && (f.Name == "config" || strings.HasSuffix(f.Name, "-config")) && strings.TrimSpace(f.Value.String()) == "" {
			err = fmt.Errorf("%w: --%s %q: an empty path (leave the flag out to use no file)", errUsage, f.Name, f.Value.String())
		}
	})
	return err
}

// unknownCommand reports whether err is cobra's error for a command that
// does not exist (unknown command "x" for "incidentctl"). Cobra has no error
// value for it, and no hook: an Args on the root would see the name, but
// cobra answers a root without Run with its help (exit 0) before checking
// Args. So the text is matched, here only.
func unknownCommand(err error) bool {
	return strings.HasPrefix(err.Error(), "unknown command ")
}

// usageArgs makes a wrong number of positional arguments a usage error
// (exit 2), like a bad flag, for every command. A check that already says
// so (errUsage) is left as it is.
func usageArgs(c *cobra.Command) {
	if check := c.Args; check != nil {
		c.Args = func(cmd *cobra.Command, args []string) error {
			err := check(cmd, args)
			if err == nil || errors.Is(err, errUsage) {
				return err
			}
			return fmt.Errorf("%w: %w", errUsage, err)
		}
	}
	for _, sub := range c.Commands() {
		usageArgs(sub)
	}
}

// newLogger logs to w in the console format at level (warn when unknown).
func newLogger(w io.Writer, level string) *zap.Logger {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		lvl = zapcore.WarnLevel
	}
	enc := zap.NewDevelopmentEncoderConfig()
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(w), lvl)
	return zap.New(core).Named("incidentctl")
}
